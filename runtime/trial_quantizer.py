"""The int8 model of each tuning trial of `quantization.fit`: the candidate ops, the
fp32 fallback rules, calibration and the execution order of the ops."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from torch import nn

from .batches import _BatchCache, batch_size_of, call_model, model_device, to_device
from .progress import Progress
from .quant import DYNAMIC, STATIC, QuantSpec, get_backend, get_recipe
from .quant.backend import OpRule
from .state_size import module_walk
from .tuning import Op, TuneConfig

#: `quantization.fit`'s messages keep their logger name
log = logging.getLogger("neural_coder.runtime.quantization")


#: module types the backend quantizes (static: Linear / Conv; dynamic: Linear / RNNs; both:
#: embeddings, weight-only)
_STATIC_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Embedding,
    nn.EmbeddingBag,
)
_DYNAMIC_TYPES: tuple[type[nn.Module], ...] = (
    nn.Embedding,
    nn.EmbeddingBag,
    nn.Linear,
    nn.LSTM,
    nn.GRU,
    nn.LSTMCell,
    nn.GRUCell,
    nn.RNNCell,
)


def _fallback_rules(names: Iterable[str]) -> tuple[OpRule, ...]:
    return tuple(OpRule(pattern=re.escape(n), by="name", quantize=False) for n in sorted(names))


def _iter_candidate_ops(
    model: nn.Module, approaches: Sequence[str], spec: QuantSpec
) -> Iterator[Op]:
    types = _DYNAMIC_TYPES if approaches == [DYNAMIC] else _STATIC_TYPES
    for name, module in module_walk(model):
        if name and isinstance(module, types) and spec.plan_for(name, module) is not None:
            yield Op(name, type(module).__name__)


def _candidate_ops(model: nn.Module, approaches: Sequence[str], spec: QuantSpec) -> list[Op]:
    """Leaf modules the backend can quantize (used before any int8 model exists)."""
    return list(_iter_candidate_ops(model, approaches, spec))


def _has_candidate_op(model: nn.Module, approaches: Sequence[str], spec: QuantSpec) -> bool:
    """Whether `_candidate_ops` would find one (it stops at the first)."""
    return next(_iter_candidate_ops(model, approaches, spec), None) is not None


class _ExecutionOrder:
    """Records the order in which leaf modules first run (during the baseline evaluation)."""

    def __init__(self, model: nn.Module) -> None:
        self.order: dict[str, int] = {}
        self.handles = []
        for name, module in model.named_modules():
            if name and next(module.children(), None) is None:
                self.handles.append(module.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name: str) -> Callable[..., None]:
        def record(_module: nn.Module, _args: Any) -> None:
            self.order.setdefault(name, len(self.order))

        return record

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


class _Quantizer:
    """Builds the int8 model of a `TuneConfig` (the tuning loop's `build`)."""

    def __init__(
        self,
        fp32: nn.Module,
        spec: QuantSpec,
        calib_dataloader: Any,
        calib_func: Callable[[nn.Module], Any] | None,
    ) -> None:
        self.fp32 = fp32
        self.spec = spec
        self.backend = get_backend()
        self.calib_func = calib_func
        self.calib_dataloader = calib_dataloader
        self.cache = _BatchCache(calib_dataloader, fp32) if calib_dataloader is not None else None
        self.order: dict[str, int] = {}
        #: op name -> modules fused into it (a BatchNorm after a conv): in fp32 together
        self.members: dict[str, list[str]] = {}
        #: the path was chosen before quantizing (a class to keep): nothing to report
        self.reported_path = spec.path is not None

    def spec_for(self, config: TuneConfig) -> QuantSpec:
        names = set(config.fallback)
        for name in config.fallback:
            names.update(self.members.get(name, ()))
        return replace(
            self.spec,
            approach=config.get("approach", STATIC),
            rules=self.spec.rules + _fallback_rules(names),
        )

    def calibrate(self, size: int) -> Callable[[nn.Module], None]:
        if self.calib_func is not None:
            return lambda prepared: self.calib_func(prepared)  # type: ignore[misc]
        assert self.cache is not None
        cache = self.cache

        def run(prepared: nn.Module) -> None:
            first = cache.first(1)
            if not first:
                raise ValueError("calib_dataloader yielded no batch")
            count = max(1, math.ceil(size / batch_size_of(self.calib_dataloader, first[0])))
            batches = cache.first(count)
            device = model_device(prepared)
            with Progress(len(batches), "calibrating", unit="batch") as bar:
                for inputs in batches:
                    call_model(prepared, to_device(inputs, device))
                    bar.update()

        return run

    def __call__(self, config: TuneConfig) -> nn.Module:
        spec = self.spec_for(config)
        if spec.approach == DYNAMIC:
            model = self.backend.quantize_dynamic(self.fp32, spec)
        else:
            size = int(config.get("calibration_sampling_size", 100))
            model = self.backend.quantize_static(self.fp32, spec, self.calibrate(size))
        self._report_path(model)
        return model

    def _report_path(self, model: nn.Module) -> None:
        recipe = get_recipe(model) or {}
        if self.reported_path or recipe.get("approach") != STATIC:
            return
        self.reported_path = True
        if recipe.get("path") == "eager":
            log.info(
                "the model cannot be FX-traced (%s): quantizing its Linear / Conv modules one "
                "by one instead (eager path, %d module(s) in int8)",
                recipe.get("fallback_reason") or "tracing failed",
                len(recipe.get("quantized_ops") or []),
            )

    def ops(self, model: nn.Module | None, config: TuneConfig) -> list[Op]:
        """Tunable ops in execution order: the int8 modules of `model`, else candidates."""
        last = len(self.order)
        fp32_modules = dict(self.fp32.named_modules())
        if model is None:
            ops = _candidate_ops(self.fp32, [config.get("approach", STATIC)], self.spec)
            ops.sort(key=lambda op: self.order.get(op.name, last))
            # before any int8 model exists, the BatchNorms FX would fuse into a conv
            batch_norms = {
                n for n, m in fp32_modules.items() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            }
            self._find_members(ops, fp32_modules, lambda name: name not in batch_norms)
            return ops
        recipe = get_recipe(model) or {}
        names = list(recipe.get("quantized_ops") or [])
        int8_modules = dict(model.named_modules())
        ops = [
            Op(n, type(fp32_modules.get(n) or int8_modules.get(n) or nn.Module()).__name__)
            for n in names
        ]
        ops.sort(key=lambda op: self.order.get(op.name, last))
        self._find_members(ops, fp32_modules, int8_modules.__contains__)
        return ops

    def _find_members(
        self,
        ops: Sequence[Op],
        fp32_modules: Mapping[str, nn.Module],
        kept: Callable[[str], bool],
    ) -> None:
        """Leaf modules that the int8 model no longer has (`kept(name)` is False: a
        BatchNorm or a ReLU fused into the conv before it) belong to the op that runs just
        before them: keeping that op in fp32 keeps them in fp32 too, else they would be
        quantized on their own (a float conv followed by an int8 ReLU is not fp32)."""
        timed = [(self.order[op.name], op.name) for op in ops if op.name in self.order]
        for name, module in fp32_modules.items():
            if (
                not name
                or kept(name)
                or name not in self.order
                or next(module.children(), None) is not None
            ):
                continue
            before = [op for when, op in timed if when < self.order[name]]
            members = self.members.setdefault(before[-1], []) if before else None
            if members is not None and name not in members:
                members.append(name)
