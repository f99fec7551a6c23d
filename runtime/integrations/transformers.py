"""Hugging Face `Trainer` integration: training-time compression, PTQ evaluation, saving and loading.

Training-time compression (the shape `neural-coder` generates)::

    compression_manager = prepare_compression(model, [WeightPruningConfig(...), ...])
    trainer = Trainer(model=model, ..., callbacks=[CompressionCallback(compression_manager, prune_until=0.8)])
    with_distillation(trainer, compression_manager)      # only with a DistillationConfig
    trainer.train()

The Trainer gets the bare model, not `compression_manager.model`: it reads the
model's `forward` signature (to drop unused dataset columns) and its label
names (so evaluation hands labels to `compute_metrics`), which a wrapper would
hide. Every technique therefore acts on the module object the Trainer holds:

* `CompressionCallback` maps the Trainer's events to the manager's INC 2.x
  hooks (`hooks.py` lists the order and what each one sees: pruning reads the
  accumulated, clipped gradients before `optimizer.step()` and masks after it).
  It uses only INC 2.x hook names, so an INC 2.x `CompressionManager` works too.
  `prune_until` fits the pruning schedules to the Trainer's run length when
  training starts (the generated config carries a placeholder `end_step`).
* QAT prepares the model in place (this runtime's eager per-module path;
  Hugging Face models take it anyway, as they cannot be FX-traced); a manager
  that replaces the module (INC's FX QAT) is refused with a clear error.
  After `train()`, `compression_manager.model` is the int8 model, and the
  Trainer's model stays the fake-quant float model, with its observers frozen
  at the end of training so that `trainer.evaluate()` measures the int8
  model's quantization; its config records the quantization recipe
  (`neural_coder_qat_recipe`).
* `with_distillation` wraps the trainer's `compute_loss` (subclass overrides
  included) so that the loss is `on_after_compute_loss(inputs, outputs, loss)`.
* Calling `train()` again after QAT is refused (an int8 model cannot be trained).

Saving and loading after a compressed run:

* `trainer.save_model(dir)` after pruning or distillation: a normal Hugging
  Face folder (the pruned weights are zeros), loaded by `from_pretrained`.
* `trainer.save_model(dir)` after QAT: the fake-quant model (float weights plus
  the observers' scales) and the recipe in `config.json`.
  `OptimizedModel.from_pretrained(dir)` rebuilds the int8 model from it (the
  same as `compression_manager.model`); the model class's own
  `from_pretrained(dir)` loads the QAT-trained float weights (and reports the
  fake-quant entries as unexpected keys).
* `compression_manager.model.save_pretrained(dir)` (int8: `config.json` +
  `best_model.pt`) and `save_for_huggingface_upstream(model, tokenizer, dir)`
  (INC's format: `pytorch_model.bin` with the recipe, `config.json` marked
  int8): both load with `OptimizedModel.from_pretrained(dir)`.

Post-training quantization with a Trainer::

    q = quantization.fit(trainer.model, conf, calib_dataloader=trainer.get_eval_dataloader(),
                         eval_func=trainer_eval_func(trainer, "eval_accuracy"))
    use_quantized_model(trainer, q)        # then trainer.evaluate() / trainer.save_model() as before

int8 models run on the CPU: evaluating them through a Trainer needs
`TrainingArguments(use_cpu=True)` (or a machine without an accelerator).

This module needs transformers; the rest of `neural_coder.runtime` does not.
"""

from __future__ import annotations

try:
    import transformers
    from transformers import AutoConfig, TrainerCallback
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "neural_coder.runtime.integrations.transformers needs the transformers package "
        "(pip install transformers); the rest of neural_coder.runtime works without it"
    ) from _missing

import contextlib
import copy
import functools
import json
import logging
import os
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..model import BEST_CONFIGURE, CHECKPOINT_NAME, Model, load
from ..quant import QAT, QuantSpec, get_backend, get_recipe
from ..quant.backend import RECIPE_ATTR, RECIPE_FORMAT
from .hooks import (
    TrainerCompressionError,
    TrainerHooks,
    check_callback_arguments,
    check_manager,
    freeze_fake_quant,
    manager_module,
    prepare_on,
)
from .results import LOWER_IS_BETTER, bare_module

__all__ = [
    "QAT_RECIPE_KEY",
    "WEIGHTS_NAME",
    "CompressionCallback",
    "OptimizedModel",
    "TrainerCompressionError",
    "save_for_huggingface_upstream",
    "trainer_eval_func",
    "use_quantized_model",
    "with_distillation",
]

log = logging.getLogger(__name__)

#: weights file of `save_for_huggingface_upstream` (INC's name)
WEIGHTS_NAME = "pytorch_model.bin"
#: config attribute that carries the QAT recipe of a fake-quant model saved by the Trainer
QAT_RECIPE_KEY = "neural_coder_qat_recipe"
_SAFE_WEIGHTS = "model.safetensors"
_SAFE_INDEX = "model.safetensors.index.json"


# -- training: the callback -----------------------------------------------------------
class CompressionCallback(TrainerCallback):
    """A `TrainerCallback` that runs a compression manager's hooks (ours or INC 2.x's).

    Pass it in `Trainer(..., callbacks=[CompressionCallback(cm)])` or with
    `trainer.add_callback(...)` before `train()`; see the module docstring.
    `CompressionCallback(configs=confs)` prepares the manager itself on the model the
    Trainer holds once it is built (a Trainer given a model id builds the model itself);
    `.compression_manager` is set from then on (`prepare`: INC 2.x's
    `prepare_compression`, when the configs are INC's).
    `prune_until=0.8` fits the pruning schedules to the run when training starts:
    pruning ends at 80 % of the Trainer's optimizer steps (`TrainerHooks`).
    """

    def __init__(
        self,
        compression_manager: Any = None,
        prune_until: float | None = None,
        *,
        configs: Any = None,
        prepare: Any = None,
    ) -> None:
        check_callback_arguments(compression_manager, configs)
        self.compression_manager = compression_manager
        self.prune_until = prune_until
        self.configs = configs
        self.prepare = prepare  # prepare_compression of INC 2.x, or this runtime's (None)
        self._hooks = (
            None
            if compression_manager is None
            else TrainerHooks(compression_manager, prune_until=prune_until)
        )

    @property
    def hooks(self) -> TrainerHooks:
        if self._hooks is None:
            raise TrainerCompressionError(
                "CompressionCallback(configs=...) prepares the manager on the model the Trainer "
                "holds when the Trainer is built (on_init_end): pass it in Trainer(callbacks=[...])"
            )
        return self._hooks

    def _prepare(self, model: Any) -> None:
        """Configs mode: the manager on the model the Trainer built (from a model id)."""
        if self._hooks is None and model is not None:
            self.compression_manager = prepare_on(model, self.configs, self.prepare, "the Trainer")
            self._hooks = TrainerHooks(self.compression_manager, prune_until=self.prune_until)

    def on_init_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        self._prepare(model)
        if model is not None:
            self.hooks.check_same_module(model)

    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        train_dataloader: Any = None,
        **kwargs: Any,
    ) -> None:
        self._prepare(model)
        self.hooks.train_begin(model, train_dataloader, max_steps=state.max_steps)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.epoch_begin(state.epoch)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.step_begin(state.global_step)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.before_optimizer_step()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.after_optimizer_step()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.step_end()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.epoch_end()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hooks.train_end()
        trained = self.hooks.trained_model
        if (
            isinstance(trained, nn.Module)
            and manager_module(self.compression_manager) is not trained
        ):
            _finish_fake_quant_model(
                trained, getattr(self.compression_manager.model, "q_config", None)
            )


def _finish_fake_quant_model(model: nn.Module, recipe: Any) -> None:
    """`freeze_fake_quant` (see hooks.py), then record the recipe in the model's config,
    so that `trainer.save_model()` writes a folder `OptimizedModel` turns into the same
    int8 model."""
    freeze_fake_quant(model)
    config = getattr(model, "config", None)
    if (
        config is None
        or not isinstance(recipe, dict)
        or recipe.get("format") != RECIPE_FORMAT
        or recipe.get("approach") != QAT
    ):
        return
    try:
        json.dumps(recipe)
    except (TypeError, ValueError):
        log.warning("the QAT recipe is not JSON-serializable; it is not recorded in the config")
        return
    setattr(config, QAT_RECIPE_KEY, recipe)


# -- training: distillation through compute_loss ------------------------------------------
_WRAPPED = "_neural_coder_distillation_manager"


def with_distillation(trainer: Any, compression_manager: Any) -> Any:
    """Make `trainer.compute_loss` return the distillation loss; returns `trainer`.

    The wrapper runs the trainer's own `compute_loss` (a subclass override too,
    with its `num_items_in_batch` and other arguments) with `return_outputs=True`,
    then returns `compression_manager.callbacks.on_after_compute_loss(inputs,
    outputs, loss)`: the teacher runs on a copy of the inputs taken before
    `compute_loss` could pop the labels. Only training steps are distilled
    (`model.training`); evaluation losses stay the plain ones.

    Gradient accumulation: when the Trainer treats the loss as already
    normalized over the accumulated batch (`loss_is_scaled_for_ga`, or a model
    that accepts `num_items_in_batch`), the distillation term is weighted by this
    micro-batch's share of the labelled items, as the student loss is; otherwise
    the Trainer divides the whole loss by the accumulation steps.
    """
    conf = getattr(compression_manager, "conf", None)
    if getattr(conf, "distillation", None) is None:
        raise ValueError(
            "with_distillation needs a compression manager built with a DistillationConfig "
            "(prepare_compression(model, [DistillationConfig(teacher_model, ...), ...])); "
            "this one has none, so there is no distillation loss to add"
        )
    callbacks = check_manager(compression_manager, "with_distillation")
    current = getattr(trainer, "compute_loss", None)
    if not callable(current):
        raise TypeError(f"{type(trainer).__name__} has no compute_loss method to wrap")
    wrapped_for = getattr(current, _WRAPPED, None)
    if wrapped_for is compression_manager:
        return trainer
    if wrapped_for is not None:
        raise ValueError(
            "with_distillation was already applied to this trainer with another manager"
        )
    original = current

    @functools.wraps(original)
    def compute_loss(
        model: Any,
        inputs: Any,
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not getattr(model, "training", True):
            return original(
                model,
                inputs,
                return_outputs=return_outputs,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        teacher_inputs = dict(inputs) if isinstance(inputs, Mapping) else inputs
        result = original(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch, **kwargs
        )
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"{type(trainer).__name__}.compute_loss(..., return_outputs=True) must return "
                "(loss, outputs); distillation needs the student's outputs"
            )
        loss, outputs = result
        share = _micro_batch_share(trainer, teacher_inputs, num_items_in_batch)
        if share is None:
            total = _distilled(callbacks, teacher_inputs, outputs, loss)
        elif float(share) == 0.0:  # no labelled item here: nothing to weigh
            total = loss
        else:
            total = _distilled(callbacks, teacher_inputs, outputs, loss / share) * share
        return (total, outputs) if return_outputs else total

    setattr(compute_loss, _WRAPPED, compression_manager)
    trainer.compute_loss = compute_loss
    return trainer


def _distilled(callbacks: Any, inputs: Any, outputs: Any, loss: torch.Tensor) -> torch.Tensor:
    result = callbacks.on_after_compute_loss(inputs, outputs, loss)
    if isinstance(result, list):  # INC 2.x: [] without a loss, a list with several
        return result[-1] if result else loss
    return loss if result is None else result


def _micro_batch_share(trainer: Any, inputs: Any, num_items_in_batch: Any) -> Any:
    """This micro-batch's labelled items / the accumulated batch's, when the Trainer
    will not divide the loss by the accumulation steps itself; else None."""
    if num_items_in_batch is None:
        return None
    scaled = getattr(trainer, "loss_is_scaled_for_ga", None)
    if scaled is None:
        scaled = bool(getattr(trainer, "model_accepts_loss_kwargs", False)) or (
            getattr(trainer, "compute_loss_func", None) is not None
        )
    if not scaled:
        return None
    count = getattr(trainer, "_get_num_items_in_batch", None)
    items = None
    if callable(count):  # the Trainer's own count, so both sides are counted alike
        with contextlib.suppress(Exception):
            items = count([inputs], getattr(trainer.args, "device", None))
    if items is None and isinstance(inputs, Mapping) and torch.is_tensor(inputs.get("labels")):
        items = inputs["labels"].ne(-100).sum()
    if items is None:
        steps = getattr(trainer, "current_gradient_accumulation_steps", 1) or 1
        return 1.0 / steps
    return items / num_items_in_batch


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
            if len(self.keys) > 1:  # one key: the direction is the criterion's, as written
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
        hints = [f"eval_{k}" for k in self.keys if f"eval_{k}" in metrics]
        hint = f" (did you mean {hints[0]!r}?)" if hints else ""
        wanted = " or ".join(repr(k) for k in self.keys)
        raise KeyError(
            f"trainer.evaluate() returned no {wanted}{hint}; its metrics are "
            f"{sorted(metrics)}. Metrics of compute_metrics carry the 'eval_' prefix, and "
            "without compute_metrics only 'eval_loss' is there: pass the key to tune on "
            "to trainer_eval_func"
        )


def trainer_eval_func(
    trainer: Any, metric_key: str | Sequence[str] = "eval_loss"
) -> Callable[[Any], float]:
    """`eval_func(candidate) -> float` for `quantization.fit`: `trainer.evaluate()` of the
    candidate (swapped in as `trainer.model` / `trainer.model_wrapped`, both restored
    after) and its `metrics[metric_key]` (`"eval_loss"`, or `"eval_<name>"` for a key
    of `compute_metrics`).

    `metric_key` may list several keys, for a `compute_metrics` whose branches return
    different ones (`eval_mse` for regression, `eval_accuracy` for classification): the
    first key the first evaluation holds is used from then on, and whether higher is
    better follows its name (`fit` turns its accuracy criterion to match).
    A single key keeps the direction the `AccuracyCriterion` says."""
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
            object.__setattr__(module, RECIPE_ATTR, dict(recipe))
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


# -- saving and loading ---------------------------------------------------------------------
def save_for_huggingface_upstream(
    model: Any, tokenizer: Any, output_dir: str | os.PathLike[str]
) -> str:
    """INC 2.x's `neural_compressor.utils.load_huggingface.save_for_huggingface_upstream`.

    An int8 model (`compression_manager.model` after QAT, `quantization.fit`'s result,
    or a bare int8 module of this runtime) is written as INC does: the tokenizer's
    files, `pytorch_model.bin` (the state dict plus the recipe under `best_configure`)
    and `config.json` with `architectures = [class name]` and `dtype = "int8"`.
    Unlike INC, the model's own config is not modified (a copy is written), a
    `tokenizer` of None is skipped, and a float model (pruned, distilled) is saved
    with its own `save_pretrained`. Load either with `OptimizedModel.from_pretrained`.
    Returns `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    inner = bare_module(model)
    recipe = getattr(model, "q_config", None) or get_recipe(inner)
    os.makedirs(output_dir, exist_ok=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    if recipe is None:
        inner.save_pretrained(output_dir)  # type: ignore[operator]
        return output_dir
    config = getattr(inner, "config", None)
    if config is None or not hasattr(config, "save_pretrained"):
        raise TypeError(
            f"save_for_huggingface_upstream needs a Hugging Face model (with .config); "
            f"{type(inner).__name__} has none: use model.save(dir) instead"
        )
    state = inner.state_dict()
    if BEST_CONFIGURE in state:
        raise RuntimeError(f"the model has a parameter or buffer named {BEST_CONFIGURE!r}")
    state[BEST_CONFIGURE] = dict(recipe)
    torch.save(state, os.path.join(output_dir, WEIGHTS_NAME))
    config = copy.deepcopy(config)
    config.architectures = [type(inner).__name__]
    config.dtype = "int8"  # INC's load marker (INC 2.x sets the older name, torch_dtype)
    config.save_pretrained(output_dir)
    return output_dir


class OptimizedModel:
    """INC 2.x's `neural_compressor.utils.load_huggingface.OptimizedModel`: use `from_pretrained`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(
            f"{type(self).__name__} is built with "
            f"{type(self).__name__}.from_pretrained(model_name_or_path)"
        )

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> nn.Module:
        """The model saved in `model_name_or_path`, int8 when it was saved int8.

        Reads, in this order: this runtime's `save_pretrained` of an int8 model
        (`best_model.pt`), INC's `save_for_huggingface_upstream` format (config
        `dtype` int8 + `pytorch_model.bin`), a fake-quant model saved by
        `trainer.save_model()` after QAT (its config holds the recipe; the int8 model
        is rebuilt from its observers' scales), else a float model, loaded with
        `config.architectures[0]`'s `from_pretrained` (kwargs go there). The model
        class is looked up in `transformers` by name (never evaluated); pass
        `model_class=` when the config names none (folders written by other tools,
        or int8 folders saved before `architectures` was recorded). Checkpoints are read with `weights_only=True`.
        """
        path = os.fspath(model_name_or_path)
        config = kwargs.pop("config", None)
        if config is None:
            config = AutoConfig.from_pretrained(path, **_hub_kwargs(kwargs))
        model_class = kwargs.pop("model_class", None) or _model_class(config)
        local = os.path.isdir(path)
        if local and os.path.isfile(os.path.join(path, CHECKPOINT_NAME)):
            return load(path, _skeleton(model_class, config))
        if _marked_int8(config):
            if local:
                weights = os.path.join(path, WEIGHTS_NAME)
            else:
                from transformers.utils import cached_file

                weights = cached_file(path, WEIGHTS_NAME, **_hub_kwargs(kwargs))
            return load(weights, _skeleton(model_class, config))
        recipe = getattr(config, QAT_RECIPE_KEY, None)
        if isinstance(recipe, Mapping) and local:
            return _int8_from_fake_quant(path, model_class, config, recipe, kwargs)
        return model_class.from_pretrained(path, config=config, **kwargs)


_HUB_KEYS = ("cache_dir", "force_download", "revision", "token", "local_files_only", "subfolder")


def _hub_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _HUB_KEYS if k in kwargs}


def _model_class(config: Any) -> type[nn.Module]:
    names = getattr(config, "architectures", None) or []
    if not names:
        raise ValueError(
            "the saved config names no architecture (config.architectures is empty, as for "
            "a model built from a config rather than from_pretrained): pass it, "
            "OptimizedModel.from_pretrained(path, model_class=BertForSequenceClassification)"
        )
    model_class = getattr(transformers, names[0], None)
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise ValueError(f"transformers has no model class {names[0]!r} (config.architectures)")
    return model_class


def _marked_int8(config: Any) -> bool:
    # transformers 5 names it dtype (reading torch_dtype there warns); 4.x torch_dtype
    name = "dtype" if hasattr(config, "dtype") else "torch_dtype"
    return getattr(config, name, None) in (torch.int8, "int8")


def _skeleton(model_class: type[nn.Module], config: Any) -> nn.Module:
    """A float model of the saved architecture (its weights are replaced by the load)."""
    config = copy.deepcopy(config)
    config.dtype = torch.float32  # the int8 marker is not a dtype to build with
    return model_class(config)


def _saved_state(folder: str) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face folder (safetensors, sharded or not, or pytorch_model.bin)."""
    from safetensors.torch import load_file

    index = os.path.join(folder, _SAFE_INDEX)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(os.path.join(folder, shard)))
        return state
    if os.path.isfile(os.path.join(folder, _SAFE_WEIGHTS)):
        return load_file(os.path.join(folder, _SAFE_WEIGHTS))
    if os.path.isfile(os.path.join(folder, WEIGHTS_NAME)):
        return torch.load(os.path.join(folder, WEIGHTS_NAME), map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {_SAFE_WEIGHTS}, {_SAFE_INDEX} or {WEIGHTS_NAME} in {folder}")


def _int8_from_fake_quant(
    folder: str,
    model_class: type[nn.Module],
    config: Any,
    recipe: Mapping[str, Any],
    kwargs: dict[str, Any],
) -> nn.Module:
    """Float weights through `from_pretrained`, then the QAT structure of `recipe` with the
    saved observer state, converted to int8."""
    if recipe.get("format") != RECIPE_FORMAT:
        raise ValueError(f"{folder}: {QAT_RECIPE_KEY} is not a neural_coder recipe")
    config = copy.deepcopy(config)
    delattr(config, QAT_RECIPE_KEY)
    with _quiet_transformers():  # the fake-quant entries are "unexpected keys" to it
        model = model_class.from_pretrained(folder, config=config, **kwargs)
    spec = QuantSpec.from_dict(recipe["spec"])
    spec = QuantSpec(
        approach=QAT,
        rules=spec.rules,
        reduce_range=recipe.get("reduce_range", spec.reduce_range),
        path="eager",
    )
    backend = get_backend()
    float_keys = set(model.state_dict())
    prepared = backend.prepare_qat(model, spec)
    observer_keys = set(prepared.model.state_dict()) - float_keys
    saved = _saved_state(folder)
    result = prepared.model.load_state_dict(
        {k: v for k, v in saved.items() if k in observer_keys}, strict=False
    )
    lost = sorted(observer_keys & set(result.missing_keys))
    if lost:
        raise ValueError(
            f"{folder} lacks the fake-quant state of {len(lost)} entries (e.g. {lost[:3]}); "
            "it was not saved from the QAT model of this recipe"
        )
    return backend.convert(prepared, inplace=True)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
