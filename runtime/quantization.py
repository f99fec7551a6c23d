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
import logging
import math
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .config import ConfigValueError, PostTrainingQuantConfig, options
from .model import Model
from .quant import DYNAMIC, STATIC, QuantSpec, get_backend, get_recipe
from .quant.backend import CHILDREN_PATH, OpRule
from .summary import report, runtime_logger, state_dict_size
from .tuning import Op, Progress, TuneConfig, TuningResult, criterion_for, tune

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
_LABEL_KEYS = ("labels", "label")


# -- batches --------------------------------------------------------------------------
def split_batch(batch: Any) -> tuple[Any, Any]:
    """`(inputs, labels)` of one dataloader batch.

    `(x, y)` / `[x, y]` -> `(x, y)`; a 1-tuple -> `(x, None)`; a dict -> the dict
    without its `labels` / `label` key (Hugging Face) and that label; anything
    else (a tensor) -> `(batch, None)`. Tuples longer than 2 are `(x, y, ...)`.
    """
    if isinstance(batch, Mapping):
        labels = next((batch[k] for k in _LABEL_KEYS if k in batch), None)
        return {k: v for k, v in batch.items() if k not in _LABEL_KEYS}, labels
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) >= 2:
            return batch[0], batch[1]
    return batch, None


def forward_inputs(batch: Any, model: nn.Module) -> Any:
    """What one batch feeds the model for calibration or timing: `split_batch`'s
    inputs, except that an encoder-decoder (T5, BART) keeps the batch's `labels`,
    from which it builds its decoder inputs when the batch has none."""
    inputs, labels = split_batch(batch)
    config = getattr(model, "config", None)
    if (
        isinstance(batch, Mapping)
        and labels is not None
        and getattr(config, "is_encoder_decoder", False)
        and not any(key.startswith("decoder_") for key in batch)
    ):
        return dict(batch)
    return inputs


def call_model(model: Callable[..., Any], inputs: Any) -> Any:
    """`model(**inputs)` for a dict, `model(*inputs)` for a tuple / list, else `model(inputs)`."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def to_device(value: Any, device: torch.device | None) -> Any:
    """Tensors inside `value` (dicts, tuples, lists) moved to `device`."""
    if device is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device) if value.device != device else value
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(to_device(v, device) for v in value)
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    return value


def model_device(model: nn.Module) -> torch.device | None:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def batch_size_of(loader: Any, inputs: Any = None) -> int:
    """The loader's `batch_size`, else the first dimension of the first tensor of `inputs`."""
    size = getattr(loader, "batch_size", None)
    if isinstance(size, int) and size > 0:
        return size
    tensor = _first_tensor(inputs)
    if tensor is not None and tensor.dim() > 0:
        return int(tensor.shape[0])
    return 1


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def prediction(output: Any) -> Any:
    """The prediction tensor of a model output: `.logits` (Hugging Face), the first
    element of a tuple / list, the `logits` (or first) value of a dict."""
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, Mapping) and output:
        return output["logits"] if "logits" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return output


def _check_dataloader(loader: Any, name: str) -> None:
    if loader is not None and not hasattr(loader, "__iter__"):
        raise TypeError(
            f"{name} must be iterable (a torch DataLoader or any iterable of batches), "
            f"got {type(loader).__name__}"
        )


class _BatchCache:
    """The first batches of a loader, read once (calibration reuses them every trial)."""

    def __init__(self, loader: Any, model: nn.Module) -> None:
        self.loader = loader
        self.model = model
        self.batches: list[Any] = []
        self._iterator: Iterator[Any] | None = None
        self.exhausted = False

    def first(self, count: int) -> list[Any]:
        if len(self.batches) < count and not self.exhausted:
            if self._iterator is None:
                self._iterator = iter(self.loader)
            for batch in self._iterator:
                self.batches.append(forward_inputs(batch, self.model))
                if len(self.batches) >= count:
                    break
            else:
                self.exhausted = True
        return self.batches[:count]


# -- metrics ---------------------------------------------------------------------------
class _Metric:
    """INC's metric protocol: `reset()`, `update(preds, labels)`, `result()`."""

    higher_is_better = True

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, preds: Any, labels: Any) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError


class TopK(_Metric):
    """Top-k accuracy of class scores `(N, C)` against labels `(N,)` or one-hot `(N, C)`."""

    def __init__(self, k: int = 1) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"topk k must be an int >= 1, got {k!r}")
        self.k = k
        self.reset()

    def reset(self) -> None:
        self.hits = 0
        self.seen = 0

    def update(self, preds: Any, labels: Any) -> None:
        scores = torch.as_tensor(prediction(preds)).detach().float().cpu()
        target = torch.as_tensor(labels).detach().cpu()
        if scores.dim() == 1:
            scores = scores.unsqueeze(0)
        scores = scores.reshape(-1, scores.shape[-1])
        if (
            target.dim() == scores.dim()
            and target.shape[-1] == scores.shape[-1]
            and target.dim() > 1
        ):
            target = target.argmax(-1)  # one-hot
        target = target.reshape(-1).long()
        k = min(self.k, scores.shape[-1])
        top = scores.topk(k, dim=-1).indices
        self.hits += int((top == target.unsqueeze(-1)).any(dim=-1).sum())
        self.seen += int(target.numel())

    def result(self) -> float:
        return self.hits / self.seen if self.seen else 0.0


class Accuracy(TopK):
    """Top-1 accuracy for class scores; exact-match rate when predictions are labels."""

    def __init__(self) -> None:
        super().__init__(1)

    def update(self, preds: Any, labels: Any) -> None:
        scores = torch.as_tensor(prediction(preds)).detach().cpu()
        target = torch.as_tensor(labels).detach().cpu()
        if scores.shape == target.shape:  # already labels
            self.hits += int((scores == target).sum())
            self.seen += int(target.numel())
            return
        super().update(scores, target)


class _Regression(_Metric):
    higher_is_better = False

    def reset(self) -> None:
        self.total = 0.0
        self.seen = 0

    def __init__(self) -> None:
        self.reset()

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, preds: Any, labels: Any) -> None:
        pred = torch.as_tensor(prediction(preds)).detach().float().cpu()
        target = torch.as_tensor(labels).detach().float().cpu().reshape(pred.shape)
        self.total += float(self._error(pred - target).sum())
        self.seen += int(target.numel())

    def result(self) -> float:
        return self.total / self.seen if self.seen else 0.0


class MSE(_Regression):
    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.square()


class MAE(_Regression):
    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class RMSE(MSE):
    def result(self) -> float:
        return math.sqrt(super().result())


_BUILTIN: dict[str, Callable[[Any], _Metric]] = {
    "topk": lambda arg: TopK(int(arg)),
    "accuracy": lambda arg: Accuracy(),
    "mse": lambda arg: MSE(),
    "mae": lambda arg: MAE(),
    "rmse": lambda arg: RMSE(),
}


def build_metric(eval_metric: Any) -> Any:
    """A metric object from INC's `eval_metric` forms (spec 5, step 4).

    An object with `reset` / `update` / `result` is used as is; INC's
    `Metric(metric_cls=..., name=..., **kwargs)` is instantiated; a dict names one
    built-in metric: `{'topk': k}`, `{'Accuracy': {}}`, `{'MSE': {}}`, `{'MAE': {}}`,
    `{'RMSE': {}}` (several metrics with weights are refused).
    """
    if all(hasattr(eval_metric, a) for a in ("reset", "update", "result")):
        return eval_metric
    metric_cls = getattr(eval_metric, "metric_cls", None)
    if metric_cls is not None:
        kwargs = getattr(eval_metric, "kwargs", None) or {}
        return build_metric(metric_cls(**kwargs))
    if isinstance(eval_metric, Mapping):
        names = [k for k in eval_metric if k not in ("weight", "higher_is_better")]
        if len(names) != 1:
            raise ValueError(
                f"eval_metric {dict(eval_metric)!r}: exactly one built-in metric is supported "
                f"({', '.join(sorted(_BUILTIN))}); for several, pass eval_func="
            )
        name = names[0]
        factory = _BUILTIN.get(str(name).lower())
        if factory is None:
            raise ValueError(
                f"unknown built-in metric {name!r}; available: {', '.join(sorted(_BUILTIN))} "
                "(or pass an object with reset/update/result)"
            )
        return factory(eval_metric[name])
    raise TypeError(
        "eval_metric must be an object with reset/update/result, INC's Metric(...) or a "
        f"dict such as {{'topk': 1}}, got {type(eval_metric).__name__}"
    )


def make_eval_func(eval_dataloader: Any, eval_metric: Any) -> Callable[[nn.Module], float]:
    """INC's built evaluation: run the loader, `metric.update(prediction, labels)`, `result()`."""
    metric = build_metric(eval_metric)

    def evaluate(model: nn.Module) -> float:
        metric.reset()
        device = model_device(model)
        was_training = model.training
        model.eval()
        total = len(eval_dataloader) if hasattr(eval_dataloader, "__len__") else None
        try:
            with torch.no_grad(), Progress(total, "evaluating", unit="batch") as bar:
                for batch in eval_dataloader:
                    inputs, labels = split_batch(batch)
                    output = call_model(model, to_device(inputs, device))
                    metric.update(prediction(output), labels)
                    bar.update()
        finally:
            model.train(was_training)
        value = metric.result()
        if isinstance(value, (list, tuple)):
            value = value[0]
        return float(value)

    return evaluate


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


def _fallback_rules(names: Iterable[str]) -> tuple[OpRule, ...]:
    return tuple(OpRule(pattern=re.escape(n), by="name", quantize=False) for n in sorted(names))


def _candidate_ops(model: nn.Module, approaches: Sequence[str], spec: QuantSpec) -> list[Op]:
    """Leaf modules the backend can quantize (used before any int8 model exists)."""
    types = _DYNAMIC_TYPES if approaches == [DYNAMIC] else _STATIC_TYPES
    ops: list[Op] = []
    for name, module in model.named_modules():
        if name and isinstance(module, types) and spec.plan_for(name, module) is not None:
            ops.append(Op(name, type(module).__name__))
    return ops


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

    size_before = state_dict_size(model)
    quantizer = _Quantizer(model, spec, calib_dataloader, calib_func)
    began = time.monotonic()

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
    result: TuningResult[nn.Module] = tune(
        build=quantizer,
        evaluate=lambda candidate: metric_value(evaluate(candidate), "the evaluation"),
        baseline=baseline,
        criterion=criterion_for(getattr(conf, "accuracy_criterion", None), evaluate),
        first=first,
        ops=quantizer.ops,
        strategy=_strategy(conf),
        max_trials=int(getattr(tuning, "max_trials", 100)),
        timeout=float(getattr(tuning, "timeout", 0)),
        logger=log,
    )
    extra: dict[str, Any] = {
        "baseline_metric": baseline,
        "higher_is_better": bool(
            getattr(getattr(conf, "accuracy_criterion", None), "higher_is_better", True)
        ),
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
    size_before: int,
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


def _recipe_facts(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    recipe = recipe or {}
    return {
        "approach": recipe.get("approach"),
        "quantization_path": recipe.get("path"),
        "fx_fallback_reason": recipe.get("fallback_reason"),
    }
