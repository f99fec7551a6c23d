"""State dicts as plain tensors, for `safetensors` (and any format that holds only tensors).

`safetensors.torch.save_file` takes a dict of plain, unshared tensors. A compressed
model's state dict is not one:

* an int8 model's holds quantized tensors, `(weight, bias)` tuples of packed linear
  parameters and a `torch.dtype` (`fc._packed_params.dtype`);
* a QAT model's (fake quantization while it trains) holds the same observer's buffers
  under several names, where torch.fx shares one observer between ops;
* both carry, in the state dict's `_metadata`, the recipe `structure_for` rebuilds the
  int8 model from, and the modules' versions their loading depends on; safetensors
  keeps no `_metadata`.

`tensors_only(state)` gives `state` itself when safetensors can save it as it is and it
is no compressed model's (a float model's state dict: the file written is unchanged);
otherwise a dict of plain tensors: a quantized tensor as its integer values plus its
scales and zero points, a tuple item by item, every shared tensor as a copy of its own,
and one `uint8` entry, `__neural_coder_state__`, that holds (as JSON) how to put the
rest back together and the `_metadata`. `state_dict_from_tensors(tensors)` puts it back;
it gives a dict without that entry back as it is. `structure_for` accepts either form.

Imports torch only; safetensors is the script's own import.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .int8_device import RECIPE_ATTRS

__all__ = ["ENTRY", "state_dict_from_tensors", "tensors_only"]

#: the entry that says how to rebuild the state dict
ENTRY = "__neural_coder_state__"
FORMAT = "neural_coder.plain_tensors/1"

_QUANTIZED = {torch.qint8: torch.int8, torch.quint8: torch.uint8, torch.qint32: torch.int32}
_QUANTIZED_BY_NAME = {str(q).removeprefix("torch."): q for q in _QUANTIZED}


def tensors_only(state: Mapping[str, Any] | nn.Module) -> Any:
    """`state` as safetensors can save it (see the module's docstring); `state` itself
    when it already is one and carries no compression recipe. Given a module (what
    `accelerator.save_model(model, folder)` takes), a view of it whose `state_dict()`
    is that."""
    if isinstance(state, nn.Module):
        return _PlainTensorsView(state)
    metadata = getattr(state, "_metadata", None)
    compressed = isinstance(metadata, Mapping) and any(
        attr in entry for entry in metadata.values() for attr in RECIPE_ATTRS
    )
    if not compressed and _plain(state):
        return state
    tensors: dict[str, torch.Tensor] = {}
    entries = {key: _flatten(key, value, tensors) for key, value in state.items()}
    spec = {
        "format": FORMAT,
        "order": list(state.keys()),
        "entries": {k: v for k, v in entries.items() if v is not None},
        "metadata": _json_metadata(metadata),
    }
    tensors = _unshared(tensors)
    tensors[ENTRY] = torch.frombuffer(bytearray(json.dumps(spec).encode()), dtype=torch.uint8)
    return tensors


def state_dict_from_tensors(tensors: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state dict `tensors_only` flattened, with its `_metadata`; `tensors` as it
    is when it has no `__neural_coder_state__` entry."""
    if ENTRY not in tensors:
        return tensors
    spec = json.loads(bytes(tensors[ENTRY].to("cpu", torch.uint8).tolist()).decode())
    if spec.get("format") != FORMAT:
        raise ValueError(f"{ENTRY}: unknown format {spec.get('format')!r} (expected {FORMAT})")
    entries = spec["entries"]
    state: OrderedDict[str, Any] = OrderedDict()
    for key in spec["order"]:
        state[key] = _rebuild(key, entries.get(key), tensors)
    if spec["metadata"] is not None:
        state._metadata = spec["metadata"]  # type: ignore[attr-defined]
    return state


class _PlainTensorsView(nn.Module):
    """`module` as savers that call `state_dict()` see it: its state dict as plain
    tensors. Runs as `module` does."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return tensors_only(self.module.state_dict(*args, **kwargs))


# -- flattening ----------------------------------------------------------------------------------


def _plain(state: Mapping[str, Any]) -> bool:
    values = list(state.values())
    if not all(
        type(v) in (torch.Tensor, torch.nn.Parameter) and not v.is_quantized for v in values
    ):
        return False
    storages = [v.untyped_storage().data_ptr() for v in values if v.numel()]
    return len(storages) == len(set(storages))


def _flatten(key: str, value: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """Store `value` under `key` (and keys below it) in `tensors`; what it takes to
    rebuild it, or None for a plain tensor."""
    if isinstance(value, torch.Tensor):
        if not value.is_quantized:
            tensors[key] = value.detach()
            return None
        return _flatten_quantized(key, value, tensors)
    if isinstance(value, (tuple, list)):
        items = [_flatten(f"{key}/{i}", item, tensors) for i, item in enumerate(value)]
        return {"sequence": type(value).__name__, "items": items}
    if value is None:
        return {"none": True}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(
        f"state dict entry {key!r} ({type(value).__name__}) cannot be stored as tensors; "
        "save it with torch.save instead"
    )


def _flatten_quantized(key: str, value: torch.Tensor, tensors: dict[str, torch.Tensor]) -> dict:
    if value.dtype not in _QUANTIZED:
        raise TypeError(f"state dict entry {key!r}: {value.dtype} cannot be stored as tensors")
    tensors[key] = value.int_repr()
    dtype = str(value.dtype).removeprefix("torch.")
    scheme = value.qscheme()
    if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return {"quantized": dtype, "scale": value.q_scale(), "zero_point": value.q_zero_point()}
    if scheme in (torch.per_channel_affine, torch.per_channel_symmetric):
        tensors[f"{key}/scales"] = value.q_per_channel_scales()
        tensors[f"{key}/zero_points"] = value.q_per_channel_zero_points()
        return {"quantized": dtype, "axis": value.q_per_channel_axis()}
    raise TypeError(f"state dict entry {key!r}: {scheme} cannot be stored as tensors")


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor contiguous and in storage of its own (safetensors refuses shared
    memory: torch.fx shares one observer between ops)."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        shared = tensor.numel() > 0 and pointer in seen
        seen.add(pointer)
        whole = tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        out[key] = tensor.clone() if shared or not whole else tensor.contiguous()
    return out


def _json_metadata(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, Mapping):
        return None
    try:
        return json.loads(json.dumps(dict(metadata)))
    except TypeError as error:
        raise TypeError(f"the state dict's metadata cannot be stored as JSON: {error}") from None


# -- rebuilding ----------------------------------------------------------------------------------


def _rebuild(key: str, entry: dict[str, Any] | None, tensors: Mapping[str, Any]) -> Any:
    if entry is None:
        return tensors[key]
    if "sequence" in entry:
        items = [_rebuild(f"{key}/{i}", item, tensors) for i, item in enumerate(entry["items"])]
        return tuple(items) if entry["sequence"] == "tuple" else items
    if "none" in entry:
        return None
    if "dtype" in entry:
        dtype = getattr(torch, entry["dtype"], None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{key}: unknown dtype {entry['dtype']!r}")
        return dtype
    if "value" in entry:
        return entry["value"]
    from .quant.qconfigs import _quiet  # torch.ao's deprecation of quantized tensors

    with _quiet():
        return _rebuild_quantized(key, entry, tensors)


def _rebuild_quantized(key: str, entry: dict[str, Any], tensors: Mapping[str, Any]) -> Any:
    """On the CPU, where torch.ao's int8 kernels run (a file loaded onto a GPU, too)."""
    values = tensors[key].cpu()
    if _QUANTIZED[_QUANTIZED_BY_NAME[entry["quantized"]]] != values.dtype:
        raise ValueError(f"{key}: integer values of {values.dtype} for {entry['quantized']}")
    if "axis" in entry:
        scales, zero_points = tensors[f"{key}/scales"], tensors[f"{key}/zero_points"]
        return torch._make_per_channel_quantized_tensor(
            values, scales.cpu(), zero_points.cpu(), entry["axis"]
        )
    return torch._make_per_tensor_quantized_tensor(values, entry["scale"], entry["zero_point"])
