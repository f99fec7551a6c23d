"""bf16 mixed precision: `fit(model, MixedPrecisionConfig(...), eval_func=...)` (INC 2.x, spec 6.1).

Never hands back a model slower than the one it was given. bf16 pays off on a
CPU only with bf16 instructions (AVX512-BF16, AMX-BF16) and, even then, only
for layers large enough to amortize the casts; on a CPU without them torch
emulates bf16 and a converted model runs several times slower. So:

1. **CPU check.** Without native bf16 (`cpu.cpu_info().native_bf16`, and
   oneDNN's own check) `fit` refuses: it logs why and returns None, so a
   rewritten script keeps its fp32 model. INC ends the process instead
   (`sys.exit(0)`, quirk 9.11).
2. **Measure.** Each candidate module (`nn.Linear`, `nn.Conv1d/2d/3d`, minus
   what `op_type_dict` / `op_name_dict` pin to another dtype) is timed in fp32
   and in bf16 (input cast, bf16 kernel, output cast back) on the input it
   receives from a real batch: `example_inputs` of the config, else the first
   batch of `eval_dataloader`, else the batch the baseline `eval_func` call ran.
   Only modules at least 10% faster in bf16 are converted, and the whole
   converted model must be faster than fp32 on that batch; otherwise `fit`
   refuses with the measured numbers. No batch at all -> refusal (the gain
   cannot be measured).
3. **Tune.** With an evaluation, the `automixedprecision` scheme of INC: every
   kept module in bf16 first, then fp32 fallback one by one (last first) and
   accumulated, through the loop of `tuning.py`, until `accuracy_criterion`
   holds or the `tuning_criterion` budget ends (None, with the reason, when
   nothing meets the goal). Without one: converted once.

`FORCE_BF16=1` (INC's switch) skips the CPU check and converts every candidate
whatever the measurement says; the measured ratio is still logged.

A converted module keeps its class's state-dict keys (its class becomes a
`BF16Linear` / `BF16Conv2d`... subclass holding bf16 weights), so the model
saves as usual, plus the names of its bf16 modules under `best_configure` (as an
int8 model saves its recipe there); `load(path, fp32_model)` converts the same modules
of a copy of `fp32_model` and loads the bf16 weights into them (the bf16 model back). Functional matmuls (attention's `bmm`) are not modules
and stay fp32 here (INC converts them through its graph).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import cpu
from .batches import ModelInputs, call_model, forward_inputs, model_device, to_device
from .bf16 import (
    _BF16_CLASSES,
    BF16Conv1d,
    BF16Conv2d,
    BF16Conv3d,
    BF16Linear,
    Measurement,
    _to_bf16_in_place,
    convert,
    measure_seconds,
    time_model,
    time_module,
)
from .config import ConfigValueError, MixedPrecisionConfig
from .model import Model
from .progress import Progress
from .quantization import evaluation_from, fit_arguments, metric_value
from .summary import report, state_dict_size
from .tuning import Op, TuneConfig, criterion_for, tune

__all__ = [
    "BF16Conv1d",
    "BF16Conv2d",
    "BF16Conv3d",
    "BF16Linear",
    "Measurement",
    "convert",
    "fit",
    "measure_seconds",
    "time_model",
    "time_module",
]

log = logging.getLogger(__name__)

#: a module is converted only when bf16 takes at most this fraction of its fp32 time
GAIN_THRESHOLD = 0.9
#: the whole converted model must take at most this fraction of the fp32 model's time
MODEL_THRESHOLD = 0.97


def _capture_module_inputs(
    model: nn.Module, names: Sequence[str], inputs: Any
) -> dict[str, torch.Tensor]:
    """The first tensor input each named module receives while `model` runs `inputs`."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:

        def hook(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            if name not in captured and args and isinstance(args[0], torch.Tensor):
                captured[name] = args[0].detach()

        handles.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            # a `torch.compile`d model runs its compiled graph, which does not call the hooks
            # added after it was compiled: its original module runs them
            call_model(_eager(model), inputs)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _eager(model: nn.Module) -> nn.Module:
    """The module `torch.compile` wrapped (`_orig_mod`), else `model`."""
    original = getattr(model, "_orig_mod", None)
    return original if isinstance(original, nn.Module) else model


def _measure_modules(model: nn.Module, names: Sequence[str], inputs: Any) -> dict[str, Measurement]:
    captured = _capture_module_inputs(model, names, inputs)
    results: dict[str, Measurement] = {}
    with Progress(len(names), "measuring bf16", unit="module") as bar:
        for name in names:
            x = captured.get(name)
            bar.update()
            if x is None or not x.dtype.is_floating_point:
                continue
            module = model.get_submodule(name)
            bf16 = copy.deepcopy(module)
            _to_bf16_in_place(bf16)
            results[name] = Measurement(name, time_module(module, x), time_module(bf16, x))
    return results


def _measure_model(fp32: nn.Module, converted: nn.Module, inputs: Any) -> Measurement:
    return Measurement("", time_model(fp32, inputs), time_model(converted, inputs))


# -- candidates ------------------------------------------------------------------------------
def _pinned_elsewhere(name: str, type_name: str, conf: Any) -> bool:
    """True when `op_type_dict` / `op_name_dict` give the op dtypes without 'bf16'
    (fullmatch; name rules after type rules, the last matching one wins)."""
    excluded = False
    for table, key in (
        (getattr(conf, "op_type_dict", None) or {}, type_name),
        (getattr(conf, "op_name_dict", None) or {}, name),
    ):
        for pattern, entry in table.items():
            if re.fullmatch(pattern, key) is None or not isinstance(entry, Mapping):
                continue
            for kind in ("weight", "activation"):
                dtypes = (entry.get(kind) or {}).get("dtype")
                if dtypes is None:
                    continue
                dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
                excluded = "bf16" not in dtypes
    return excluded


#: modules whose forward can read their children's weights directly (torch's fused
#: transformer fast path in eval mode): a bf16 child would meet fp32 activations there,
#: so their Linear children stay fp32
_FUSED_PARENTS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)


def _candidates(model: nn.Module, conf: Any) -> list[str]:
    return [
        name
        for name, module in model.named_modules()
        if name
        and type(module) in _BF16_CLASSES
        and next(module.parameters()).dtype == torch.float32
        and not isinstance(model.get_submodule(name.rpartition(".")[0]), _FUSED_PARENTS)
        and not _pinned_elsewhere(name, type(module).__name__, conf)
        and not _adapter_layer(model, name)
    ]


def _adapter_layer(model: nn.Module, name: str) -> bool:
    """A layer of a PEFT adapter (`lora_A` beside the adapted `base_layer`): PEFT casts its
    input to `lora_A`'s dtype and hands that output on as it is, bf16 to an fp32 `lora_B`."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        parent = model.get_submodule(".".join(parts[:depth]))
        if isinstance(getattr(parent, "base_layer", None), nn.Module):
            return parts[depth] != "base_layer"
    return False


# -- checks ------------------------------------------------------------------------------------
def _forced() -> bool:
    return os.environ.get("FORCE_BF16", "").strip() == "1"


def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def _refuse(model: nn.Module, size_before: int, why: str, extra: Mapping[str, Any]) -> None:
    log.warning("mix_precision.fit: %s; returning None (keep using the fp32 model)", why)
    report(model, size_before, {"bf16_modules": 0, "bf16_refused": why, **extra})


def _check_conf(conf: Any) -> str | None:
    """The reason this config cannot run, or None."""
    owner = type(conf).__name__
    backend = getattr(conf, "backend", "default")
    if backend != "default":
        raise ConfigValueError(
            owner,
            "backend",
            backend,
            "'default' (ipex autocast is not part of neural_coder.runtime)",
        )
    precisions = list(getattr(conf, "precisions", ["bf16"]))
    excluded = list(getattr(conf, "excluded_precisions", []) or [])
    if "bf16" not in precisions:
        if "fp16" in precisions:
            return "fp16 mixed precision needs an ONNX model on ONNX Runtime's CUDA provider (spec 6.1)"
        return f"no supported precision in precisions={precisions}"
    if "bf16" in excluded:
        return "bf16 is in excluded_precisions"
    if getattr(conf, "device", "cpu") != "cpu":
        return "device='gpu': mix_precision.fit converts for the CPU; on a GPU use torch.autocast"
    return None


def _check_cpu() -> str | None:
    info = cpu.cpu_info()
    if not info.native_bf16:
        return (
            f"this CPU has no native bf16 instructions (AVX512-BF16 / AMX-BF16; {info.describe()}): "
            "bf16 would run emulated, several times slower than fp32. Set FORCE_BF16=1 to convert "
            "anyway"
        )
    if not _onednn_bf16():
        return "this torch build's oneDNN reports no bf16 support on this CPU"
    return None


def _example_inputs(conf: Any, eval_dataloader: Any, model: nn.Module) -> Any:
    example = getattr(conf, "example_inputs", None)
    if example is not None:
        return example
    if eval_dataloader is not None:
        for batch in eval_dataloader:
            return forward_inputs(batch, model)
    return None


#: keywords of a forward call made inside `generate()`: they carry the generation's state
#: (a cache that later steps mutate, the encoder's output), so the call cannot be replayed
_GENERATION_STATE = ("past_key_values", "encoder_outputs", "cache_position")


def _is_generation_step(kwargs: Mapping[str, Any]) -> bool:
    return any(kwargs.get(key) is not None for key in _GENERATION_STATE)


class _CallRecorder:
    """Records the inputs of the first call of a model (during the baseline evaluation)
    that is not a step of `generate()`, whose state a replay cannot reuse."""

    def __init__(self, model: nn.Module) -> None:
        self.args: tuple[Any, ...] | None = None
        self.kwargs: dict[str, Any] = {}
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.args is None and not _is_generation_step(kwargs):
            self.args, self.kwargs = args, dict(kwargs)

    def inputs(self) -> Any:
        if self.args is None:
            return None
        if self.kwargs:
            return ModelInputs(*self.args, **self.kwargs) if self.args else self.kwargs
        if len(self.args) == 1 and not isinstance(self.args[0], tuple | list | Mapping):
            return self.args[0]
        # `model(images)` with a list of images (a detection model): call_model would
        # spread a lone list over the parameters, so the call's own tuple is kept
        return self.args

    def remove(self) -> None:
        self.handle.remove()


# -- fit ------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    conf: Any = None,
    eval_func: Callable[[nn.Module], Any] | None = None,
    eval_dataloader: Any = None,
    eval_metric: Any = None,
    calib_dataloader: Any = None,
    **kwargs: Any,
) -> Model | None:
    """Convert the modules of `model` that run faster in bf16 (INC 2.x `mix_precision.fit`).

    Returns a `Model` wrapping the converted copy, or None (with a log line saying
    why) when this CPU has no native bf16, bf16 measured no gain, or no converted
    config met the accuracy goal. `model` itself is not modified.

    `calib_dataloader` is not INC's (its **kwargs ignore it, and INC converts without
    measuring): a loader whose first batch measures the speed-up when neither
    `example_inputs` nor an evaluation gives one.
    """
    model, conf = fit_arguments(
        "mix_precision.fit", "converts", model, conf, MixedPrecisionConfig, kwargs
    )
    evaluate = evaluation_from(eval_func, eval_dataloader, eval_metric)
    size_before = state_dict_size(model)
    none_extra = {"baseline_metric": None, "final_metric": None, "trials": []}

    reason = _check_conf(conf)
    forced = _forced()
    if reason is None and not forced:
        reason = _check_cpu()
    if reason is not None:
        _refuse(model, size_before, reason, none_extra)
        return None
    if forced:
        log.warning("FORCE_BF16=1: converting without checking the CPU or requiring a speed-up")

    device = model_device(model)
    if device is not None and device.type != "cpu":
        _refuse(
            model,
            size_before,
            f"the model is on {device}; bf16 conversion is for the CPU",
            none_extra,
        )
        return None

    baseline: float | None = None
    recorder = _CallRecorder(model) if evaluate is not None else None
    if evaluate is not None:
        try:
            baseline = metric_value(evaluate(model), "the evaluation")
        finally:
            assert recorder is not None
            recorder.remove()
        log.info("fp32 baseline: %.4f", baseline)
    extra: dict[str, Any] = {
        **none_extra,
        "baseline_metric": baseline,
        "higher_is_better": bool(
            getattr(getattr(conf, "accuracy_criterion", None), "higher_is_better", True)
        ),
    }

    inputs = _example_inputs(
        conf, eval_dataloader if eval_dataloader is not None else calib_dataloader, model
    )
    if inputs is None and recorder is not None:
        inputs = recorder.inputs()
    inputs = to_device(inputs, device)
    names = _candidates(model, conf)
    if not names:
        _refuse(model, size_before, "no Linear / Conv module to convert to bf16", extra)
        return None

    was_training = model.training
    model.eval()
    try:
        return _convert_and_tune(
            model, conf, evaluate, baseline, inputs, names, forced, size_before, extra
        )
    finally:
        model.train(was_training)


def _convert_and_tune(
    model: nn.Module,
    conf: Any,
    evaluate: Callable[[nn.Module], Any] | None,
    baseline: float | None,
    inputs: Any,
    names: list[str],
    forced: bool,
    size_before: int,
    extra: dict[str, Any],
) -> Model | None:
    if inputs is None:
        if not forced:
            _refuse(
                model,
                size_before,
                "no batch to measure the bf16 speed on: pass MixedPrecisionConfig(example_inputs=...), "
                "an eval_dataloader, a calib_dataloader, or an eval_func that runs the model",
                extra,
            )
            return None
        chosen, measured, whole = names, {}, None
    else:
        measured = _measure_modules(model, names, inputs)
        extra = {**extra, "bf16_measurements": [m.to_dict() for m in measured.values()]}
        faster = [n for n in names if n in measured and measured[n].ratio <= GAIN_THRESHOLD]
        _log_measurements(measured, faster)
        chosen = names if forced else faster
        if not chosen:
            _refuse(
                model,
                size_before,
                f"bf16 measured no gain: none of the {len(names)} Linear / Conv module(s) runs "
                f"at least {1 - GAIN_THRESHOLD:.0%} faster in bf16 on this CPU "
                f"(best bf16/fp32 time ratio {min((m.ratio for m in measured.values()), default=float('nan')):.2f})",
                extra,
            )
            return None
        whole = _measure_model(model, convert(model, chosen), inputs)
        if whole.ratio > MODEL_THRESHOLD and not forced:
            _refuse(
                model,
                size_before,
                f"bf16 measured no gain for the whole model: fp32 {whole.fp32_s * 1e3:.3f} ms vs "
                f"bf16 {whole.bf16_s * 1e3:.3f} ms per batch with {len(chosen)} module(s) converted",
                extra,
            )
            return None
        log.info(
            "bf16: %d of %d module(s) converted; model %.3f ms -> %.3f ms per batch (%.2fx)",
            len(chosen),
            len(names),
            whole.fp32_s * 1e3,
            whole.bf16_s * 1e3,
            whole.fp32_s / whole.bf16_s if whole.bf16_s else float("inf"),
        )

    ops = [Op(n, type(model.get_submodule(n)).__name__) for n in chosen]
    if evaluate is None:
        final = convert(model, chosen)
        fallback: list[str] = []
        final_metric = None
        trials: list[dict[str, Any]] = []
    else:
        assert baseline is not None
        tuning = getattr(conf, "tuning_criterion", None)
        result = tune(
            build=lambda config: convert(model, [n for n in chosen if n not in config.fallback]),
            evaluate=lambda candidate: metric_value(evaluate(candidate), "the evaluation"),
            baseline=baseline,
            criterion=criterion_for(getattr(conf, "accuracy_criterion", None), evaluate),
            first=TuneConfig.make(precision="bf16"),
            ops=ops,
            strategy="basic",
            max_trials=int(getattr(tuning, "max_trials", 100)),
            timeout=float(getattr(tuning, "timeout", 0)),
            logger=log,
        )
        trials = [t.to_dict() for t in result.trials]
        if result.best is None or result.best_model is None:
            _refuse(model, size_before, result.explain(), {**extra, "trials": trials})
            return None
        log.info("%s", result.explain())
        final = result.best_model
        fallback = result.best.fp32_ops
        final_metric = result.best.accuracy
    converted = [n for n in chosen if n not in fallback]
    if fallback and inputs is not None:
        whole = _measure_model(model, final, inputs)
        if whole.ratio > MODEL_THRESHOLD and not forced:
            _refuse(
                model,
                size_before,
                f"the model that meets the accuracy goal is not faster in bf16 (fp32 "
                f"{whole.fp32_s * 1e3:.3f} ms vs bf16 {whole.bf16_s * 1e3:.3f} ms per batch)",
                {**extra, "trials": trials},
            )
            return None
    wrapped = Model(final, conf=conf)
    object.__setattr__(wrapped, "_fp32_model", model)
    report(
        wrapped,
        size_before,
        {
            **extra,
            "precision": "bf16",
            "bf16_modules": len(converted),
            "fp32_ops": fallback,
            "final_metric": final_metric,
            "trials": trials,
            "latency_fp32_ms": None if whole is None else round(whole.fp32_s * 1e3, 4),
            "latency_bf16_ms": None if whole is None else round(whole.bf16_s * 1e3, 4),
        },
    )
    return wrapped


def _log_measurements(measured: Mapping[str, Measurement], faster: Sequence[str]) -> None:
    for name, m in measured.items():
        log.debug(
            "bf16 %s: fp32 %.4f ms, bf16 %.4f ms (x%.2f)%s",
            name,
            m.fp32_s * 1e3,
            m.bf16_s * 1e3,
            m.ratio,
            " -> bf16" if name in faster else "",
        )
    log.info(
        "bf16 measured on %d module(s): %d at least %.0f%% faster in bf16",
        len(measured),
        len(faster),
        (1 - GAIN_THRESHOLD) * 100,
    )
