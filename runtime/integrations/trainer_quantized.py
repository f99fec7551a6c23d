"""Post-training quantization with a Trainer: `trainer_eval_func` for `quantization.fit` and
`use_quantized_model` (see `neural_coder.runtime.integrations.transformers`).
"""

from __future__ import annotations

import contextlib
import logging
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..int8_device import attach_recipe
from ..model import Model
from ..quant import get_backend, get_recipe
from .results import LOWER_IS_BETTER, bare_module

# the facade's logger name, as before the split (log filters and caplog see the same name)
log = logging.getLogger("neural_coder.runtime.integrations.transformers")


# -- post-training: evaluation and the quantized model ---------------------------------------


def _is_int8(module: nn.Module) -> bool:
    return get_recipe(module) is not None or get_backend().count_quantized_modules(module) > 0


def _check_device(trainer: Any, module: nn.Module) -> None:
    device = getattr(getattr(trainer, "args", None), "device", None)
    if device is not None and torch.device(device).type != "cpu" and _is_int8(module):
        raise RuntimeError(
            f"an int8 model runs on the CPU, but this Trainer evaluates on {device}; "
            "build it with TrainingArguments(..., use_cpu=True) to evaluate int8 models"
        )


@contextlib.contextmanager
def _trainer_model(trainer: Any, module: nn.Module) -> Iterator[None]:
    saved = trainer.model, trainer.model_wrapped
    trainer.model = trainer.model_wrapped = module
    try:
        yield
    finally:
        trainer.model, trainer.model_wrapped = saved


class _TrainerEvaluation:
    """`eval_func(candidate) -> float` over `trainer.evaluate()`, see `trainer_eval_func`."""

    def __init__(self, trainer: Any, keys: Sequence[str]) -> None:
        self.trainer = trainer
        self.keys = list(keys)
        self.metric_key: str | None = None  # the key found in the first evaluation
        self.higher_is_better: bool | None = None

    def __call__(self, candidate: Any) -> float:
        module = bare_module(candidate)
        _check_device(self.trainer, module)
        with _trainer_model(self.trainer, module):
            metrics = self.trainer.evaluate()
        if self.metric_key is None:
            self.metric_key = self._pick(metrics)
            if len(self.keys) > 1 or self.metric_key not in self.keys:
                # one key found as written: the direction is the criterion's; a fallback or
                # one of several keys: the direction its name says
                lower = any(w in self.metric_key.lower() for w in LOWER_IS_BETTER)
                self.higher_is_better = not lower
        elif self.metric_key not in metrics:
            raise KeyError(
                f"trainer.evaluate() returned no {self.metric_key!r} this time (it did for the "
                f"fp32 model); its metrics are {sorted(metrics)}"
            )
        return float(metrics[self.metric_key])

    def _pick(self, metrics: dict[str, Any]) -> str:
        for key in self.keys:
            if key in metrics:
                return key
        fallback = _scored_metric(metrics) if DEFAULT_METRIC_KEY in self.keys else None
        if fallback is not None:
            # eval_loss is the default because evaluate() holds it whenever the eval
            # batches carry labels; a QA or generation Trainer often evaluates without
            # labels, and then its compute_metrics keys are what there is to tune on
            log.warning(
                "trainer.evaluate() returned no %r (the eval batches carry no labels?): "
                "tuning uses %r, the first metric it returned",
                DEFAULT_METRIC_KEY,
                fallback,
            )
            return fallback
        hints = [f"eval_{k}" for k in self.keys if f"eval_{k}" in metrics]
        hint = f" (did you mean {hints[0]!r}?)" if hints else ""
        wanted = " or ".join(repr(k) for k in self.keys)
        raise KeyError(
            f"trainer.evaluate() returned no {wanted}{hint}; its metrics are "
            f"{sorted(metrics)}. Metrics of compute_metrics carry the 'eval_' prefix, and "
            "without compute_metrics only 'eval_loss' is there: pass the key to tune on "
            "to trainer_eval_func"
        )


#: the key `trainer_eval_func` tunes on by default; when it is missing, see `_scored_metric`
DEFAULT_METRIC_KEY = "eval_loss"
#: what `trainer.evaluate()` reports about the run itself, not the model's score
_BOOKKEEPING_SUFFIXES = ("_runtime", "_per_second", "_samples", "_steps", "epoch")


def _scored_metric(metrics: dict[str, Any]) -> str | None:
    """The first numeric metric of `metrics` that scores the model (not the run time,
    the throughput, the sample count or the epoch), or None."""
    for key, value in metrics.items():
        if key.endswith(_BOOKKEEPING_SUFFIXES) or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return key
    return None


def trainer_eval_func(
    trainer: Any, metric_key: str | Sequence[str] = DEFAULT_METRIC_KEY
) -> Callable[[Any], float]:
    """`eval_func(candidate) -> float` for `quantization.fit`: `trainer.evaluate()` of the
    candidate (swapped in as `trainer.model` / `trainer.model_wrapped`, both restored
    after) and its `metrics[metric_key]` (`"eval_loss"`, or `"eval_<name>"` for a key
    of `compute_metrics`).

    `metric_key` may list several keys, for a `compute_metrics` whose branches return
    different ones (`eval_mse` for regression, `eval_accuracy` for classification): the
    first key the first evaluation holds is used from then on, and whether higher is
    better follows its name (`fit` turns its accuracy criterion to match).
    A single key keeps the direction the `AccuracyCriterion` says.

    When `"eval_loss"` is among the keys and the evaluation holds none of them (a
    question-answering Trainer evaluates on features without labels, so it has no
    loss), the first metric that scores the model is used, with a warning, in the
    direction its name says."""
    keys = [metric_key] if isinstance(metric_key, str) else list(metric_key)
    if not keys:
        raise ValueError("trainer_eval_func needs at least one metric key")
    return _TrainerEvaluation(trainer, keys)


def use_quantized_model(trainer: Any, quantized_model: Any) -> Any:
    """Make the Trainer evaluate, predict and save the result of `quantization.fit`; returns `trainer`.

    `quantized_model` is `fit`'s result: a `Model` wrapper (or the bare int8 module),
    or None when no configuration met the accuracy goal (the Trainer then keeps its
    fp32 model, with a warning). The Trainer gets the bare int8 module (the model's
    own class, so its signature and label names are unchanged), whose
    `save_pretrained` writes `config.json` + `best_model.pt`, so that
    `trainer.save_model(dir)` works and `OptimizedModel.from_pretrained(dir)` loads it.
    """
    if quantized_model is None:
        log.warning(
            "fit returned no model (see the lines above for why): the Trainer keeps the fp32 model"
        )
        return trainer
    module = bare_module(quantized_model)
    recipe = getattr(quantized_model, "q_config", None) or get_recipe(module)
    if recipe is not None:
        if get_recipe(module) is None:
            attach_recipe(module, dict(recipe))
        module.save_pretrained = types.MethodType(_save_int8_pretrained, module)
    _check_device(trainer, module)
    trainer.model = trainer.model_wrapped = module
    return trainer


def _save_int8_pretrained(self: nn.Module, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
    """`save_pretrained` of an int8 module (set by `use_quantized_model`): `Model.save_pretrained`."""
    if kwargs.get("is_main_process", True) is False:
        return None
    config = getattr(self, "config", None)
    if config is not None:  # what Hugging Face's save_pretrained records, for the loader
        config.architectures = [type(self).__name__]
    wrapper = Model(self)
    wrapper.q_config = get_recipe(self)
    return wrapper.save_pretrained(save_directory)
