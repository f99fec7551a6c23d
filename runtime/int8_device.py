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
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .batches import _first_tensor

__all__ = [
    "RECIPE_ATTR",
    "call_on_cpu",
    "check_cast",
    "first_device",
    "note_kept_on_cpu",
    "tensors_to",
]

log = logging.getLogger("neural_coder.runtime")

#: name of the attribute that carries the recipe on an int8 model the quantization
#: backend returns (here, not in `quant/`, so the wrapper reads it without importing
#: the quantization package)
RECIPE_ATTR = "neural_coder_recipe"

_CPU = torch.device("cpu")
#: the messages logged already (each once per process: every tuning trial is a new wrapper)
_logged: set[str] = set()


def tensors_to(value: Any, device: torch.device) -> Any:
    """`value` with its tensors moved to `device`, containers rebuilt as their own type
    (tuple, named tuple, list, dict, `ModelOutput` and other mapping classes)."""
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.to(device)
    if isinstance(value, Mapping):
        moved = {k: tensors_to(v, device) for k, v in value.items()}
        if type(value) is dict:
            return moved
        return _rebuilt(value, moved)
    if isinstance(value, tuple):
        items = [tensors_to(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, list):
        return [tensors_to(v, device) for v in value]
    return value


def _rebuilt(mapping: Mapping[Any, Any], moved: dict[Any, Any]) -> Any:
    """A mapping of `mapping`'s class holding `moved` (a `ModelOutput` is a dataclass
    built from keywords), or the plain dict when the class cannot be rebuilt."""
    kind = type(mapping)
    try:
        if dataclasses.is_dataclass(mapping):
            return kind(**moved)
        return kind(moved)  # type: ignore[call-arg]
    except Exception:  # noqa: BLE001 - an unusual mapping class: its values still move
        return moved


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
    _log_once(
        "int8 modules run on the CPU only (torch.ao's int8 kernels): inputs on %s are moved "
        "to the CPU and outputs back to %s",
        device,
        device,
    )
    output = module(*tensors_to(args, _CPU), **tensors_to(kwargs, _CPU))
    return tensors_to(output, device)


def note_kept_on_cpu(device: Any, call: str) -> None:
    """Log (once) that `call` leaves the int8 model on the CPU."""
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
