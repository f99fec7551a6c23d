"""The bf16 modules `mix_precision.fit` converts to (`BF16Linear`, `BF16Conv2d`...: the class's
state-dict keys, bf16 weights, input cast in and output cast back) and the timing that
decides which modules pay off."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .batches import call_model


class _BF16Forward:
    """Mixin: run the module in bf16 on a bf16 copy of the input, return the input's dtype."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's name
        dtype = input.dtype
        out = super().forward(input.to(torch.bfloat16))  # type: ignore[misc]
        return out.to(dtype) if dtype.is_floating_point else out


class BF16Linear(_BF16Forward, nn.Linear):
    """An `nn.Linear` with bf16 weights (same state-dict keys)."""


class BF16Conv1d(_BF16Forward, nn.Conv1d):
    """An `nn.Conv1d` with bf16 weights (same state-dict keys)."""


class BF16Conv2d(_BF16Forward, nn.Conv2d):
    """An `nn.Conv2d` with bf16 weights (same state-dict keys)."""


class BF16Conv3d(_BF16Forward, nn.Conv3d):
    """An `nn.Conv3d` with bf16 weights (same state-dict keys)."""


_BF16_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: BF16Linear,
    nn.Conv1d: BF16Conv1d,
    nn.Conv2d: BF16Conv2d,
    nn.Conv3d: BF16Conv3d,
}


_BF16_TYPES = frozenset(_BF16_CLASSES.values())


def _to_bf16_in_place(module: nn.Module) -> None:
    module.__class__ = _BF16_CLASSES[type(module)]
    module.to(torch.bfloat16)


#: the recipe `Model.save` records for a bf16 model, so that `load` converts the same modules
BF16_RECIPE_MODULES = "bf16_modules"


def bf16_recipe(model: nn.Module) -> dict[str, Any] | None:
    """`{"precision": "bf16", "bf16_modules": [names]}` when `model` has modules `convert`
    made bf16, else None."""
    names = [name for name, module in model.named_modules() if type(module) in _BF16_TYPES]
    return {"precision": "bf16", BF16_RECIPE_MODULES: names} if names else None


def convert(model: nn.Module, names: Iterable[str]) -> nn.Module:
    """A copy of `model` whose modules at `names` compute in bf16 (fp32 in and out)."""
    converted = copy.deepcopy(model)
    for name in names:
        _to_bf16_in_place(converted.get_submodule(name))
    return converted


# -- timing ------------------------------------------------------------------------------
def measure_seconds(fn: Callable[[], Any], min_time: float = 0.03, max_runs: int = 50) -> float:
    """Median wall time of `fn()` (after 2 warm-up calls), at least 5 runs."""
    with torch.no_grad():
        fn()
        fn()
        times: list[float] = []
        total = 0.0
        while len(times) < max_runs and (len(times) < 5 or total < min_time):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            total += elapsed
    return statistics.median(times)


class Measurement:
    """fp32 vs bf16 time of one module (or the whole model, name '')."""

    def __init__(self, name: str, fp32_s: float, bf16_s: float) -> None:
        self.name = name
        self.fp32_s = fp32_s
        self.bf16_s = bf16_s

    @property
    def ratio(self) -> float:
        """bf16 time / fp32 time (< 1: bf16 is faster)."""
        return self.bf16_s / self.fp32_s if self.fp32_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fp32_ms": round(self.fp32_s * 1e3, 4),
            "bf16_ms": round(self.bf16_s * 1e3, 4),
            "ratio": round(self.ratio, 3),
        }


def time_module(module: nn.Module, x: torch.Tensor) -> float:
    """Seconds per call of `module(x)` (tests replace it to make timing deterministic)."""
    return measure_seconds(lambda: module(x))


def time_model(model: nn.Module, inputs: Any) -> float:
    """Seconds per call of the model on `inputs` (tests replace it)."""
    return measure_seconds(lambda: call_model(model, inputs))
