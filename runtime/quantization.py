"""Post-training quantization: `fit(model, conf, calib_dataloader, ...)` (INC 2.x, spec 5).

Without an evaluation (no `eval_func`, no `eval_dataloader` + `eval_metric`) the
model is quantized once with the config and returned. With one, the fp32
baseline is measured and the tuning loop of `tuning.py` runs: every quantizable
op in int8 first, then ops kept in fp32 one by one (last op first) and
cumulatively, until `accuracy_criterion` holds or `tuning_criterion`'s
`max_trials` / `timeout` run out. One log line per trial. The result is a
`Model` wrapper (`.model`, `.q_config`, `.save()`), or None when no config met
the goal, with a log line that says why (best accuracy seen vs target, trials
used).

Approaches: `static` calibrates with `ceil(size / batch_size)` batches of
`calib_dataloader` per `calibration_sampling_size` value (or calls
`calib_func(model)`); FX graph mode where the model traces, else (Hugging Face
models) the backend's eager path, which quantizes the Linear / Conv modules
one by one and is reported in the log. A model whose class a framework needs
(a LightningModule, which the Lightning Trainer must go on testing) is kept:
each direct child holding Linear / Conv modules is quantized at its name inside
a copy of it (an FX graph where the child traces, else the eager path), and the
copy stays an instance of its class. `dynamic` needs no data. `auto` tries static, then
dynamic.

After `fit`, the run summary of `summary.py` (the same as the training
runtime's) is logged and written as JSON to `$NEURAL_CODER_SUMMARY`, with
`baseline_metric`, `final_metric` (null without evaluation) and `trials`.

A model on a GPU: calibration runs its observed copy there, the int8 result is on
the CPU (torch.ao's kernels), and the `Model` wrapper returned, like the one each
trial's `eval_func` then gets, bridges the script's GPU batches to it (see
`int8_device.py`).

Deliberate differences from INC:

* Tuning falls back to fp32 only: bf16 fallback of an int8 op has no speed-up
  with torch.ao's kernels, and `excluded_precisions` therefore changes nothing.
* `approach="auto"`'s second option quantizes the ops that have a dynamic
  kernel (Linear, RNNs) dynamically and leaves convolutions in fp32; INC mixes
  static convolutions with dynamic Linear layers in one model.
* Op-wise tuning of the alternatives listed in `op_type_dict` / `op_name_dict`
  values (a second `scheme` or `algorithm`) is not searched: the first value of
  each list is used. Recipes (`smooth_quant`, bias correction) are not
  implemented and are reported when set.
* A quantization that fails without tuning is logged and `fit` returns None
  (INC's behaviour); a failing fp32 evaluation is the caller's error and raises.
* Calibration batches are read once and reused by every trial, so trials are
  compared on the same data even with a shuffling loader.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import int8_device
from .batches import _check_dataloader, call_model, forward_inputs, model_device, split_batch
from .config import ConfigValueError, PostTrainingQuantConfig, options
from .metrics import MAE, MSE, RMSE, Accuracy, TopK, build_metric, make_eval_func
from .model import Model
from .quant import DYNAMIC, STATIC, QuantSpec, get_recipe
from .quant.backend import CHILDREN_PATH
from .summary import report, runtime_logger, state_dict_size
from .trial_quantizer import _ExecutionOrder, _has_candidate_op, _Quantizer
from .tuning import TuneConfig, TuningResult, criterion_for, tune

__all__ = [
    "Accuracy",
    "MAE",
    "MSE",
    "RMSE",
    "TopK",
    "build_metric",
    "call_model",
    "fit",
    "make_eval_func",
    "split_batch",
    "forward_inputs",
]

log = logging.getLogger(__name__)

_DEFAULT_RECIPES = {
    "smooth_quant": False,
    "fast_bias_correction": False,
    "weight_correction": False,
}


# -- fit ------------------------------------------------------------------------------------
def _approaches(approach: str) -> list[str]:
    text = str(approach).lower()
    if "auto" in text:
        return [STATIC, DYNAMIC]
    if "dynamic" in text:
        return [DYNAMIC]
    return [STATIC]


def _strategy(conf: Any) -> str:
    level = getattr(conf, "quant_level", "auto")
    if level == "auto":
        return "auto"
    if level == 0:
        return "conservative"
    wanted = getattr(getattr(conf, "tuning_criterion", None), "strategy", "basic")
    if wanted in ("basic", "auto", "conservative"):
        return wanted
    log.warning(
        "tuning strategy %r is not implemented by neural_coder.runtime; using 'basic'", wanted
    )
    return "basic"


def _check_conf(conf: Any) -> None:
    owner = type(conf).__name__
    backend = getattr(conf, "backend", "default")
    if backend != "default":
        raise ConfigValueError(
            owner,
            "backend",
            backend,
            "'default' (torch.ao on the CPU; ipex / itex / onnxrt backends are not part of "
            "neural_coder.runtime)",
        )
    if getattr(conf, "device", "cpu") != "cpu":
        log.warning("device=%r: int8 kernels of torch.ao run on the CPU", conf.device)
    if getattr(conf, "quant_format", "default") != "default":
        log.warning("quant_format=%r applies to ONNX models only; ignored", conf.quant_format)
    recipes = getattr(conf, "recipes", None) or {}
    for key, default in _DEFAULT_RECIPES.items():
        if recipes.get(key, default) != default:
            log.warning("recipe %r is not implemented by neural_coder.runtime; ignored", key)


#: (top-level package, class name) of model classes that a framework needs the model to stay
#: an instance of: the Lightning Trainer validates and tests LightningModules only
_LIGHTNING = "the Lightning Trainer validates and tests LightningModules only"
_FRAMEWORK_CLASSES = {
    ("lightning", "LightningModule"): _LIGHTNING,
    ("pytorch_lightning", "LightningModule"): _LIGHTNING,
}


def _class_to_keep(model: nn.Module) -> str | None:
    """Why the int8 model must stay an instance of `model`'s class (static quantization then
    quantizes its children inside a copy instead of tracing it into an FX GraphModule), or
    None. Matched by name: the runtime does not import Lightning."""
    for klass in type(model).__mro__:
        why = _FRAMEWORK_CLASSES.get((klass.__module__.split(".")[0], klass.__name__))
        if why is not None:
            return f"{why}, and an FX graph of the whole module would be no {klass.__name__}"
    return None


def _low_precision_weights(model: nn.Module) -> torch.dtype | None:
    """The 16-bit float dtype of the model's weights, if it has been cast to one: every
    trial would fail on it the same way (torch.ao quantizes float32 tensors)."""
    for p in model.parameters():
        if p.dtype in (torch.float16, torch.bfloat16):
            return p.dtype
        if p.is_floating_point():
            return None
    return None


def _seed() -> None:
    seed = getattr(options, "random_seed", 1978)
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed(seed)


def fit_arguments(
    name: str, verb: str, model: Any, conf: Any, default: Callable[[], Any], kwargs: dict[str, Any]
) -> tuple[nn.Module, Any]:
    """What every post-training `fit` does first: INC's `config=` alias, a warning for
    arguments it does not support, the runtime logger, and the bare module to work on."""
    if conf is None:
        conf = kwargs.pop("config", None) or default()
    if kwargs:
        log.warning("%s: ignoring unsupported arguments %s", name, sorted(kwargs))
    runtime_logger()
    if isinstance(model, Model):
        model = model.model
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} {verb} a torch.nn.Module, got {type(model).__name__}")
    return model, conf


def evaluation_from(
    eval_func: Callable[[nn.Module], Any] | None,
    eval_dataloader: Any,
    eval_metric: Any,
) -> Callable[[nn.Module], Any] | None:
    """INC's `_check_tuning_status` (spec 5): which evaluation, if any, drives tuning."""
    if eval_func is not None:
        if eval_dataloader is not None or eval_metric is not None:
            log.warning("eval_func is given: eval_dataloader and eval_metric are ignored")
        return eval_func
    if (eval_dataloader is None) != (eval_metric is None):
        given, missing = (
            ("eval_dataloader", "eval_metric")
            if eval_metric is None
            else ("eval_metric", "eval_dataloader")
        )
        raise ValueError(
            f"{given} was given without {missing}: tuning needs both (or an eval_func)"
        )
    if eval_dataloader is not None:
        _check_dataloader(eval_dataloader, "eval_dataloader")
        return make_eval_func(eval_dataloader, eval_metric)
    return None


def metric_value(value: Any, what: str) -> float:
    """INC's eval_func returns a scalar, or a list whose first entry drives tuning."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{what} returned an empty list")
        value = value[0]
    if isinstance(value, torch.Tensor):
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a number, got {type(value).__name__}") from None


def fit(
    model: nn.Module,
    conf: Any = None,
    calib_dataloader: Any = None,
    calib_func: Callable[[nn.Module], Any] | None = None,
    eval_func: Callable[[nn.Module], Any] | None = None,
    eval_dataloader: Any = None,
    eval_metric: Any = None,
    **kwargs: Any,
) -> Model | None:
    """Quantize `model` after training (INC 2.x `neural_compressor.quantization.fit`).

    Returns a `Model` whose `.model` is the int8 module and `.q_config` its recipe
    (so `save(root)` / `load(root, fp32_model)` round-trip), or None when no
    config met the accuracy goal or quantization failed (the log says why).
    `model` itself is not modified.
    """
    model, conf = fit_arguments(
        "quantization.fit", "quantizes", model, conf, PostTrainingQuantConfig, kwargs
    )
    _check_conf(conf)
    _check_dataloader(calib_dataloader, "calib_dataloader")
    evaluate = evaluation_from(eval_func, eval_dataloader, eval_metric)
    _seed()

    approaches = _approaches(getattr(conf, "approach", "static"))
    has_calibration = calib_dataloader is not None or calib_func is not None
    if STATIC in approaches and not has_calibration:
        if len(approaches) == 1:
            raise ValueError(
                "static quantization needs calibration data: pass calib_dataloader= (or "
                "calib_func=), or use PostTrainingQuantConfig(approach='dynamic')"
            )
        log.info("approach 'auto' without calib_dataloader: only dynamic quantization is tried")
        approaches = [DYNAMIC]
    spec = QuantSpec.from_config(conf, approach=approaches[0])
    keep = _class_to_keep(model)
    if keep is not None and STATIC in approaches and spec.path is None:
        spec = spec.with_path(CHILDREN_PATH)
        log.info(
            "static quantization keeps %s whole: %s; each submodule holding Linear / Conv "
            "layers is quantized at its name, as an FX graph where it traces",
            type(model).__name__,
            keep,
        )
    raw_sizes = getattr(conf, "calibration_sampling_size", None) or [100]
    sizes = list(raw_sizes) if isinstance(raw_sizes, (list, tuple)) else [raw_sizes]
    first: list[TuneConfig] = []
    for approach in approaches:
        if approach == STATIC:
            first += [
                TuneConfig.make(approach=STATIC, calibration_sampling_size=int(s)) for s in sizes
            ]
        else:
            first.append(TuneConfig.make(approach=DYNAMIC))

    # measured when the summary is reported, and only if it is shown (`model` is unchanged)
    size_before = functools.partial(state_dict_size, model)
    quantizer = _Quantizer(model, spec, calib_dataloader, calib_func)
    began = time.monotonic()
    if approaches == [DYNAMIC] and not _has_candidate_op(model, approaches, spec):
        inner = model.model if isinstance(model, Model) else model
        if next(inner.children(), None) is None:
            # torch's dynamic quantization swaps the layers inside a model, not the model
            reason = (
                f"the model is one {type(inner).__name__} layer, and dynamic quantization "
                "converts the layers inside a model, not the model itself: nothing to "
                "quantize (approach='static' with a calib_dataloader quantizes a lone layer)"
            )
        else:
            reason = (
                "dynamic quantization converts Linear, LSTM / GRU / RNN cells and embeddings, "
                f"and {type(model).__name__} has none: nothing to quantize (convolutions need "
                "approach='static' with a calib_dataloader)"
            )
        log.warning("%s; returning None (keep using the fp32 model)", reason)
        report(model, size_before, {"approach": None, "tuning": reason, "trials": []})
        return None

    if (low := _low_precision_weights(model)) is not None:
        reason = (
            f"the model's weights are {low} (cast before the fit, as model.half() does): int8 "
            "quantization starts from float32 weights; fit the float32 model, then cast what "
            "stays float, or use mix_precision.fit for bf16"
        )
        log.error("quantization failed, returning None (keep using the model): %s", reason)
        report(model, size_before, {"approach": None, "tuning": reason, "trials": []})
        return None

    if evaluate is None:
        return _quantize_once(model, conf, quantizer, first, size_before, began)

    recorder = _ExecutionOrder(model)
    try:
        baseline = metric_value(evaluate(model), "the evaluation")
    finally:
        recorder.remove()
    # execution order; registration order when the evaluation did not run the model
    quantizer.order = recorder.order or {n: i for i, (n, _) in enumerate(model.named_modules())}
    log.info("fp32 baseline: %.4f", baseline)
    tuning = getattr(conf, "tuning_criterion", None)
    # the written criterion, or its direction turned to the metric the evaluation picked
    criterion = criterion_for(getattr(conf, "accuracy_criterion", None), evaluate)
    result: TuningResult[nn.Module] = tune(
        build=quantizer,
        evaluate=lambda candidate: metric_value(
            evaluate(_trial_model(candidate, model, conf)), "the evaluation"
        ),
        baseline=baseline,
        criterion=criterion,
        first=first,
        ops=quantizer.ops,
        strategy=_strategy(conf),
        max_trials=int(getattr(tuning, "max_trials", 100)),
        timeout=float(getattr(tuning, "timeout", 0)),
        logger=log,
    )
    extra: dict[str, Any] = {
        "baseline_metric": baseline,
        "higher_is_better": bool(getattr(criterion, "higher_is_better", True)),
        "trials": [t.to_dict() for t in result.trials],
        "tuning": ("goal met: " if result.met else "goal not met: ") + result.stop_reason,
    }
    if result.best is None or result.best_model is None:
        log.warning("%s; returning None (keep using the fp32 model)", result.explain())
        report(
            model,
            size_before,
            {**extra, "approach": None, "final_metric": None, "fp32_ops": None},
        )
        return None
    log.info("%s", result.explain())
    best = result.best
    wrapped = _wrap(result.best_model, model, conf)
    report(
        wrapped,
        size_before,
        {
            **extra,
            **_recipe_facts(wrapped.q_config),
            "final_metric": best.accuracy,
            "fp32_ops": best.fp32_ops,
            "seconds": round(time.monotonic() - began, 3),
        },
    )
    return wrapped


def _quantize_once(
    model: nn.Module,
    conf: Any,
    quantizer: _Quantizer,
    first: Sequence[TuneConfig],
    size_before: Callable[[], int],
    began: float,
) -> Model | None:
    """No evaluation: the first config that quantizes (static before dynamic for auto)."""
    candidates = [first[0]]
    dynamic = next((c for c in first if c.get("approach") == DYNAMIC), None)
    if dynamic is not None and dynamic is not first[0]:
        candidates.append(dynamic)  # auto: dynamic when static fails
    int8: nn.Module | None = None
    errors: list[str] = []
    for config in candidates:
        try:
            int8 = quantizer(config)
            break
        except Exception as exc:
            errors.append(f"{config.get('approach')}: {type(exc).__name__}: {exc}")
            log.debug("quantization failed", exc_info=True)
            if config is not candidates[-1]:
                log.warning("quantization failed (%s); trying dynamic", errors[-1])
    extra = {"baseline_metric": None, "final_metric": None, "trials": [], "fp32_ops": []}
    if int8 is None:
        log.error(
            "quantization failed, returning None (keep using the fp32 model): %s",
            "; ".join(errors),
        )
        report(model, size_before, {**extra, "approach": None, "tuning": "quantization failed"})
        return None
    wrapped = _wrap(int8, model, conf)
    log.info(
        "quantized once (no eval_func / eval_dataloader: no tuning) in %.2fs",
        time.monotonic() - began,
    )
    report(
        wrapped,
        size_before,
        {
            **extra,
            **_recipe_facts(wrapped.q_config),
            "tuning": "no evaluation: quantized once",
            "seconds": round(time.monotonic() - began, 3),
        },
    )
    return wrapped


def _wrap(int8: nn.Module, fp32: nn.Module, conf: Any) -> Model:
    wrapped = Model(int8, conf=conf)
    wrapped.q_config = get_recipe(int8)
    # INC's q_model.fp32_model is the model given to fit, not the int8 one
    object.__setattr__(wrapped, "_fp32_model", fp32)
    return wrapped


def _trial_model(int8: nn.Module, fp32: nn.Module, conf: Any) -> nn.Module:
    """What `eval_func` evaluates in a trial: the bare int8 module for a model on the CPU
    (as always; bridged as `load` gives it back, so that it runs in float32 under the
    evaluation's CPU autocast too, see `int8_device`), the `Model` wrapper for one on a
    GPU, whose device bridge runs the int8 module on the CPU while the script's
    evaluation moves its batches to the GPU."""
    device = model_device(fp32)
    if device is None or device.type == "cpu":
        return int8_device.keep_on_cpu(int8)
    return _wrap(int8, fp32, conf)


def _recipe_facts(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    recipe = recipe or {}
    return {
        "approach": recipe.get("approach"),
        "quantization_path": recipe.get("path"),
        "fx_fallback_reason": recipe.get("fallback_reason"),
    }
