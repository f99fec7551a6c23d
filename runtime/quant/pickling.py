"""QAT and int8 models that `torch.save(model, f)` can pickle whole.

torch.ao gives each prepared module a qconfig whose observer constructors read the
module's device through a function local to `_add_module_to_qconfig_obs_ctr`
(`get_factory_kwargs_based_on_module_device`), and pickle cannot save a local
function ("Can't pickle local object"). Scripts save whole models
(`torch.save(model, f)`) and load them back with `torch.load(f, weights_only=False)`;
`make_picklable` puts a module-level callable that does the same in its place, in
every qconfig a model's modules and FX graph metadata hold.

torch's quantized convolutions pickle their state as a tuple whose `__setstate__`
never runs `nn.Module.__init__`, so a whole int8 model with a convolution saves but
does not load ("'Conv2d' object has no attribute '_modules'"); they get a reducer
that builds the module first.
"""

from __future__ import annotations

import copyreg
import dataclasses
from typing import Any

import torch
from torch import nn

LOCAL_DEVICE_FUNCTION = "get_factory_kwargs_based_on_module_device"
MAX_DEPTH = 8


class ModuleDeviceKwargs:
    """`factory_kwargs` for an observer: the device of `module`'s parameters and
    buffers (what torch's local function returns), as an object pickle can save."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self) -> dict[str, torch.device] | None:
        devices = {p.device for p in self.module.parameters()}
        devices |= {b.device for b in self.module.buffers()}
        device = next(iter(devices)) if devices else None
        return None if device is None else {"device": device}


def make_picklable(*roots: nn.Module) -> int:
    """Replace torch's local device functions in the qconfigs under `roots`; the number replaced."""
    _register_quantized_conv_reducers()
    fixer = _Fixer()
    for root in roots:
        for module in root.modules():
            if isinstance(module, torch.fx.GraphModule):
                _drop_string_annotations(module)
            fixer.visit(module.__dict__.get("qconfig"), 0)
            fixer.visit(module.__dict__.get("meta"), 0)
    return fixer.replaced


class _Fixer:
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.replaced = 0

    def visit(self, obj: Any, depth: int) -> None:
        if obj is None or depth > MAX_DEPTH or id(obj) in self.seen:
            return
        if isinstance(obj, str | int | float | bool | torch.Tensor | nn.Module):
            return
        self.seen.add(id(obj))
        callable_args = getattr(obj, "callable_args", None)
        if isinstance(callable_args, dict):  # torch.ao's _PartialWrapper
            for key, value in list(callable_args.items()):
                module = _local_device_module(value)
                if module is not None:
                    callable_args[key] = ModuleDeviceKwargs(module)
                    self.replaced += 1
        if isinstance(obj, dict):
            children: Any = list(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            children = list(obj)
        elif dataclasses.is_dataclass(obj) or type(obj).__module__.startswith("torch.ao"):
            children = list(getattr(obj, "__dict__", {}).values())
        else:
            return
        for child in children:
            self.visit(child, depth + 1)


def _local_device_module(value: Any) -> nn.Module | None:
    """The module torch's local device function closes over, when `value` is one."""
    if getattr(value, "__name__", None) != LOCAL_DEVICE_FUNCTION:
        return None
    for cell in getattr(value, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(content, nn.Module):
            return content
    return None


def _drop_string_annotations(graph_module: torch.fx.GraphModule) -> None:
    """A forward annotated under `from __future__ import annotations` leaves strings
    as node types; FX's pickling reads each global of the generated code as an object
    to import and fails on them. The annotations carry nothing the model needs."""
    changed = False
    for node in graph_module.graph.nodes:
        if isinstance(node.type, str):
            node.type = None
            changed = True
    if changed:
        graph_module.recompile()


def rebuild_quantized_conv(cls: type, state: tuple[Any, ...]) -> nn.Module:
    """A quantized convolution from its `__getstate__` tuple (what unpickling calls)."""
    module = cls.__new__(cls)
    nn.Module.__init__(module)
    module.__setstate__(state)
    return module


def _reduce_quantized_conv(module: nn.Module) -> tuple[Any, tuple[type, tuple[Any, ...]]]:
    return rebuild_quantized_conv, (type(module), module.__getstate__())


def _register_quantized_conv_reducers() -> None:
    from torch.ao.nn.intrinsic.quantized import modules as _intrinsic  # noqa: F401 - subclasses
    from torch.ao.nn.quantized.modules.conv import _ConvNd

    pending: list[type] = [_ConvNd]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        copyreg.dispatch_table.setdefault(cls, _reduce_quantized_conv)  # type: ignore[arg-type]
