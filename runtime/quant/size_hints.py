"""The layouts of int8 weights (per channel, bias, zeros) recorded as `SizeHint`s, so the
model's size is measured without unpacking its weights."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from . import modules as qm
from .module_tree import _get_submodule

_WEIGHTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


# -- size hints ----------------------------------------------------------------
_PER_CHANNEL = frozenset(
    {torch.per_channel_symmetric, torch.per_channel_affine, torch.per_channel_affine_float_qparams}
)


#: (per-channel, has bias, zeros of the float weight) of an int8 weight
_Layout = tuple[bool, bool, int]


def _float_zeros(weight: torch.Tensor) -> int:
    from ..state_size import count_zeros

    return count_zeros(weight)


def _weight_layout(weight_observer: Any, module: nn.Module) -> _Layout | None:
    """The layout of `module`'s weight once `weight_observer` made it int8; None when it
    does not (no hint is given then)."""
    if getattr(weight_observer, "dtype", None) != torch.qint8:
        return None
    per_channel = getattr(weight_observer, "qscheme", None) in _PER_CHANNEL
    return per_channel, module.bias is not None, _float_zeros(module.weight)


def _observer_settings(factory: Any) -> Any:
    """An object with the `dtype` and `qscheme` of the observers `factory` makes: read
    from its `with_args` keywords when both are there (no observer is built)."""
    keywords = getattr(getattr(factory, "p", None), "keywords", None) or {}
    if "dtype" in keywords and "qscheme" in keywords:
        return types.SimpleNamespace(dtype=keywords["dtype"], qscheme=keywords["qscheme"])
    return factory()


def _fx_layouts(prepared: nn.Module) -> dict[str, _Layout]:
    """Weight layouts of the Linear / Conv (fused or not) modules of an FX-prepared
    static model, from the qconfig FX resolved for each module call."""
    attrs = getattr(prepared, "meta", {}).get("_observed_graph_module_attrs")
    qconfigs = getattr(attrs, "node_name_to_qconfig", None) or {}
    graph = getattr(prepared, "graph", None)
    layouts: dict[str, _Layout] = {}
    observers: dict[int, Any] = {}
    for node in graph.nodes if graph is not None else ():
        qconfig = qconfigs.get(node.name) if node.op == "call_module" else None
        if qconfig is None or qconfig.weight is None:
            continue
        module = _get_submodule(prepared, str(node.target))
        if isinstance(module, nn.Sequential) and len(module) > 0:  # a fused module
            module = module[0]
        if type(module) not in _WEIGHTED_TYPES:
            continue
        factory = qconfig.weight
        if id(factory) not in observers:
            observers[id(factory)] = _observer_settings(factory)
        layout = _weight_layout(observers[id(factory)], module)
        if layout is not None:
            layouts[str(node.target)] = layout
    return layouts


def _eager_layouts(prepared: nn.Module) -> dict[str, _Layout]:
    layouts: dict[str, _Layout] = {}
    for name, module in prepared.named_modules():
        if isinstance(module, qm.OBSERVED_TYPES):
            layout = _weight_layout(module.weight_fake_quant, module)
            if layout is not None:
                layouts[name] = layout
    return layouts


def _attach_size_hints(model: nn.Module, layouts: Mapping[str, _Layout]) -> None:
    """Describe the packed weights of the int8 Linear / Conv modules at `layouts`' names
    for `summary.state_dict_size`, which then need not unpack them (an fbgemm unpack
    costs about what packing did). torch's own classes only: their state-dict layout
    is known."""
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.conv import _ConvNd, _ConvTransposeNd
    from torch.ao.nn.quantized.modules.linear import LinearPackedParams

    from ..state_size import SIZE_HINT_ATTR, SizeHint

    for name, (per_channel, has_bias, zeros) in layouts.items():
        module = _get_submodule(model, name)
        entries: list[tuple[str, int | None, int | None]]
        if isinstance(module, nnq.Linear):
            holder: Any = module._packed_params
            if (
                type(holder)._save_to_state_dict is not LinearPackedParams._save_to_state_dict
                or holder.dtype != torch.qint8
            ):
                continue
            if type(module)._save_to_state_dict is nnq.Linear._save_to_state_dict:
                # what the module itself adds: its output scale and zero point as 0-d
                # tensors (torch.tensor of a float and an int); the holder is a child
                scalar = torch.empty((), dtype=torch.get_default_dtype()).element_size()
                own = (("scale", scalar, None), ("zero_point", 8, None))
                object.__setattr__(
                    module, SIZE_HINT_ATTR, SizeHint(holder, own, packed_attr="_packed_params")
                )
            out = module.out_features
            numel = module.in_features * out
            channels = out if per_channel else 0
            entries = [
                ("dtype", None, None),
                ("_packed_params", numel, channels),
                ("", 4 * out if has_bias else None, None),  # the float bias, in the same tuple
            ]
        elif isinstance(module, _ConvNd) and not isinstance(module, _ConvTransposeNd):
            holder = module
            if type(module)._save_to_state_dict is not _ConvNd._save_to_state_dict:
                continue
            out = module.out_channels
            numel = out * (module.in_channels // module.groups)
            for size in module.kernel_size:
                numel *= size
            entries = [
                ("weight", numel, out if per_channel else 0),
                ("bias", 4 * out if has_bias else None, None),
                ("scale", 4, None),
                ("zero_point", 8, None),
            ]
        else:
            continue
        hint = SizeHint(holder._packed_params, tuple(entries), weight=(out, numel, zeros))
        object.__setattr__(holder, SIZE_HINT_ATTR, hint)
