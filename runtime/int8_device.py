"""The device bridge of int8 models: torch.ao's int8 kernels run on the CPU only.

A training script that quantizes after training goes on as it was written for a
GPU: it moves its batches to `cuda`, calls `model.to(device)` / `model.cuda()`,
and evaluates. The `Model` wrapper of an int8 result (`quantization.fit`, QAT's
converted model) therefore keeps the int8 module on the CPU and bridges calls:

* inputs on another device are moved to the CPU, and the tensors of the output
  (inside tuples, lists, dicts, named tuples and Hugging Face `ModelOutput`s)
  are moved back to the device the inputs came from;
* `.to(device)` / `.cuda()` leave the int8 module on the CPU, with one log line
  that says why; a dtype cast (`.half()`, `.bfloat16()`, `.double()`,
  `.to(torch.float16)`) is refused: the float parts around the int8 kernels
  must stay float32.

Inputs on the CPU call the module directly, so CPU scripts run exactly as before.

What `load` and `OptimizedModel.from_pretrained` rebuild is the bare int8 module, as
INC's `load` returns it (its class, `model.config`, `model.generate`, `model.model` of a
Hugging Face model, `state_dict()` all as they were). `keep_on_cpu` gives that module the
same behaviour in place: hooks on its calls (so `generate`, which calls the module,
is bridged too) and its own `.to` / `.cuda` / casts; both survive `torch.save` /
`copy.deepcopy`.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .batches import _first_tensor, tensors_to

__all__ = [
    "FAKE_QUANT_ATTR",
    "RECIPE_ATTR",
    "RECIPE_ATTRS",
    "attach_fake_quant_recipe",
    "attach_recipe",
    "call_on_cpu",
    "check_cast",
    "first_device",
    "keep_on_cpu",
    "kept_on_cpu",
    "note_kept_on_cpu",
    "records_recipe",
    "tensors_to",
]

log = logging.getLogger("neural_coder.runtime")

#: name of the attribute that carries the recipe on an int8 model the quantization
#: backend returns (here, not in `quant/`, so the wrapper reads it without importing
#: the quantization package)
RECIPE_ATTR = "neural_coder_recipe"
#: the recipe a QAT-prepared (fake-quant) model carries until it is converted
FAKE_QUANT_ATTR = "neural_coder_fake_quant_recipe"
RECIPE_ATTRS = (RECIPE_ATTR, FAKE_QUANT_ATTR)


def attach_recipe(module: nn.Module, recipe: dict[str, Any]) -> None:
    """Give the int8 `module` its recipe: a plain attribute (not in the state dict,
    survives deepcopy), also written into the metadata of every state dict `module`
    returns, so that a state dict the script saves itself (`torch.save(model.state_dict(),
    path)`) still says how to rebuild the int8 structure (`loading.structure_for`)."""
    object.__setattr__(module, RECIPE_ATTR, recipe)
    module.__dict__.pop(FAKE_QUANT_ATTR, None)  # converted: no longer the QAT model
    _record_in_state_dicts(module)


def attach_fake_quant_recipe(module: nn.Module, recipe: dict[str, Any]) -> None:
    """Give the QAT-prepared (fake-quant) `module` the recipe it was prepared with, in
    the metadata of its state dicts as `attach_recipe` does: a checkpoint saved while QAT
    trains is converted to the int8 model it would have become (`loading.structure_for`)."""
    object.__setattr__(module, FAKE_QUANT_ATTR, recipe)
    _record_in_state_dicts(module)


def _record_in_state_dicts(module: nn.Module) -> None:
    _kept_by_deepcopy(module)
    if _recipe_into_metadata not in module._state_dict_hooks.values():
        module._register_state_dict_hook(_recipe_into_metadata)


def _kept_by_deepcopy(module: nn.Module) -> None:
    """A GraphModule's deep copy keeps none of its instance attributes but those named in
    its `meta` (and its state-dict hooks): the fake-quant recipe is kept there, so a
    checkpoint saved while QAT trains from a copy (YOLOv5's `deepcopy(ema.ema).half()`,
    a moving average made of the prepared model) still reloads as int8. Not the int8
    recipe: a deep copy of an int8 model that has it refuses `.half()`."""
    if not isinstance(module, torch.fx.GraphModule):
        return
    kept = module.meta.setdefault("_user_preserved_attributes", {})
    kept.pop(FAKE_QUANT_ATTR, None)
    if FAKE_QUANT_ATTR in module.__dict__:
        kept[FAKE_QUANT_ATTR] = module.__dict__[FAKE_QUANT_ATTR]


def records_recipe(hook: Any) -> bool:
    """Whether a state-dict hook is `attach_recipe`'s (it adds metadata, no tensor)."""
    return hook is _recipe_into_metadata


def _recipe_into_metadata(
    module: nn.Module, state_dict: Any, prefix: str, local_metadata: dict[str, Any]
) -> None:
    for attr in RECIPE_ATTRS:
        recipe = module.__dict__.get(attr)
        if isinstance(recipe, dict):
            local_metadata[attr] = recipe


_CPU = torch.device("cpu")
#: the messages logged already (each once per process: every tuning trial is a new wrapper)
_logged: set[str] = set()


def first_device(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> torch.device | None:
    """The device of the first tensor among a call's arguments (positional first)."""
    tensor = _first_tensor(list(args))
    if tensor is None:
        tensor = _first_tensor(dict(kwargs))
    return tensor.device if tensor is not None else None


def call_on_cpu(module: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`module(*args, **kwargs)` on the CPU; the output goes back to the inputs' device."""
    device = first_device(args, kwargs)
    if device is None or device.type == "cpu":
        return module(*args, **kwargs)
    _note_bridged(device)
    output = module(*tensors_to(args, _CPU), **tensors_to(kwargs, _CPU))
    return tensors_to(output, device)


def _note_bridged(device: torch.device) -> None:
    _log_once(
        "int8 modules run on the CPU only (torch.ao's int8 kernels): inputs on %s are moved "
        "to the CPU and outputs back to %s",
        device,
        device,
    )


# -- the bare int8 module that `load` rebuilds ------------------------------------------
#: set on a module that keep_on_cpu bridged; holds the devices of the calls in progress
_CALL_DEVICES = "_neural_coder_call_devices"
_GUARDED = ("to", "cuda", "half", "bfloat16", "double")


def keep_on_cpu(module: nn.Module) -> nn.Module:
    """`module` (an int8 model), bridged in place as the `Model` wrapper bridges its inner
    module: calls with inputs on another device run on the CPU and give their outputs back
    there, `.to(device)` / `.cuda()` keep it on the CPU (one log line), float casts other
    than float32 are refused. Returns `module`; a second call changes nothing."""
    if kept_on_cpu(module):
        return module
    for handle_dict in (module._forward_pre_hooks, module._forward_hooks):
        for key in [k for k, h in handle_dict.items() if h in (_inputs_to_cpu, _outputs_back)]:
            del handle_dict[key]  # what a copy kept of an earlier bridge
    object.__setattr__(module, _CALL_DEVICES, [])
    module.register_forward_pre_hook(_inputs_to_cpu, with_kwargs=True)
    module.register_forward_hook(_outputs_back, with_kwargs=True)
    for name in _GUARDED:
        # an instance attribute shadows nn.Module's method; a picklable object, not a closure
        object.__setattr__(module, name, _StaysOnCpu(module, name))
    object.__setattr__(module, _SCRIPTABLE, _WithoutBridge(module))
    return module


def kept_on_cpu(module: nn.Module) -> bool:
    """Whether `keep_on_cpu` bridged `module`. A torch.fx `GraphModule` keeps none of
    its forward hooks nor instance attributes that shadow its methods through pickling or
    `copy.deepcopy` (torch rebuilds it from its graph): the copy is not bridged, and
    `keep_on_cpu` bridges it again."""
    return (
        isinstance(module.__dict__.get(_CALL_DEVICES), list)
        and any(h is _inputs_to_cpu for h in module._forward_pre_hooks.values())
        and isinstance(module.__dict__.get("to"), _StaysOnCpu)
    )


def _inputs_to_cpu(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    device = first_device(args, kwargs)
    bridged = device is not None and device.type != "cpu"
    # under CPU autocast (an evaluation `with torch.autocast("cpu", dtype=torch.bfloat16)`)
    # the float ops before an int8 one would hand it bf16, which its kernels refuse: the
    # int8 model runs in float32, as it was quantized; `_outputs_back` turns autocast back on
    autocast = torch.is_autocast_enabled("cpu")
    if autocast:
        torch.set_autocast_enabled("cpu", False)
    module.__dict__[_CALL_DEVICES].append((device if bridged else None, autocast))
    if not bridged:
        return None
    _note_bridged(device)  # type: ignore[arg-type]
    return tensors_to(args, _CPU), tensors_to(kwargs, _CPU)


def _outputs_back(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> Any:
    devices = module.__dict__[_CALL_DEVICES]
    # a call that raised left its entry; the `with torch.autocast` block it ran in sets
    # autocast back as it was when it exits
    device, autocast = devices.pop() if devices else (None, False)
    if autocast:
        torch.set_autocast_enabled("cpu", True)
    return None if device is None else tensors_to(output, device)


#: what `torch.jit.script` calls first on the object it is given
_SCRIPTABLE = "__prepare_scriptable__"


class _WithoutBridge:
    """`torch.jit.script(module)` of a bridged int8 module scripts a shallow copy without
    the bridge (its Python hooks cannot be compiled; a scripted module runs where its
    inputs are, and int8 kernels take CPU inputs)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self) -> nn.Module:
        clean = copy.copy(self.module)  # a GraphModule copies itself from its graph
        state = clean.__dict__
        for name in (_CALL_DEVICES, _SCRIPTABLE, *_GUARDED):
            state.pop(name, None)
        bridge = {id(_inputs_to_cpu), id(_outputs_back)}
        for hooks in ("_forward_pre_hooks", "_forward_hooks"):
            kept = OrderedDict(
                (k, h) for k, h in getattr(self.module, hooks).items() if id(h) not in bridge
            )
            state[hooks] = kept
            with_kwargs = f"{hooks}_with_kwargs"
            if with_kwargs in state:
                state[with_kwargs] = {k: v for k, v in state[with_kwargs].items() if k in kept}
        return clean


class _StaysOnCpu:
    """`module.to` / `.cuda` / `.half` / `.bfloat16` / `.double` of a bridged int8 module."""

    def __init__(self, module: nn.Module, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> nn.Module:
        call = f"model.{self.name}"
        if self.name == "to":
            device, dtype, _non_blocking, _memory_format = torch._C._nn._parse_to(*args, **kwargs)
            check_cast(dtype, call)
            note_kept_on_cpu(device, call)
        elif self.name == "cuda":
            device = args[0] if args else kwargs.get("device")
            note_kept_on_cpu("cuda" if device is None else device, call)
        else:
            check_cast(_CASTS[self.name], call)
        return self.module


_CASTS = {"half": torch.float16, "bfloat16": torch.bfloat16, "double": torch.float64}


def note_kept_on_cpu(device: Any, call: str) -> None:
    """Log (once) that `call` leaves the int8 model on the CPU."""
    if isinstance(device, int):  # `.cuda(0)`: torch.device(0) needs an accelerator present
        device = f"cuda:{device}"
    if device is None or torch.device(device).type == "cpu":
        return
    _log_once(
        "%s: the int8 model stays on the CPU (torch.ao's int8 kernels run on the CPU only); "
        "calls with inputs on %s are bridged: inputs moved to the CPU, outputs back",
        call,
        device,
    )


def check_cast(dtype: torch.dtype | None, call: str) -> None:
    """Refuse a floating-point cast of an int8 model (anything but float32)."""
    if dtype is None or dtype == torch.float32 or not dtype.is_floating_point:
        return
    raise TypeError(
        f"{call}: an int8 model cannot be cast to {dtype}: its int8 modules take and give "
        "float32 tensors, and casting the float modules around them breaks those calls. "
        "Keep the int8 model as it is, or quantize the float model to bf16 with "
        "mix_precision.fit instead of int8"
    )


def _log_once(message: str, *args: Any) -> None:
    if message in _logged:
        return
    _logged.add(message)
    log.warning(message, *args)
