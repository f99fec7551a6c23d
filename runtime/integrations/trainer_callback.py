"""`CompressionCallback`: the Trainer's events mapped to a compression manager's hooks
(see `neural_coder.runtime.integrations.transformers`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from torch import nn
from transformers import TrainerCallback

from ..quant import QAT
from ..quant.backend import RECIPE_FORMAT
from .hf_checkpoints import QAT_RECIPE_KEY
from .hooks import (
    TrainerCompressionError,
    TrainerHooks,
    check_callback_arguments,
    freeze_fake_quant,
    manager_module,
    prepare_on,
)

# the facade's logger name, as before the split (log filters and caplog see the same name)
log = logging.getLogger("neural_coder.runtime.integrations.transformers")


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
        """Configs mode: the manager on the model the Trainer built (from a model id), and
        a new one on each model a `Trainer(model_init=...)` builds when train() starts
        (every run of a hyperparameter search, the final run after it)."""
        if model is None or self.configs is None:
            return
        if self._hooks is not None and any(
            model is known
            for known in (
                manager_module(self.compression_manager),
                getattr(self.compression_manager, "model", None),
                self._hooks.trained_model,  # train() again after QAT: check_same_module says why
            )
        ):
            return
        if self._hooks is not None:
            log.info("the Trainer built a new model (model_init): compressing it")
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

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "load_best_model_at_end", False) and self._hooks is not None:
            self._hooks.forget_best_before_pruned(state)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "load_best_model_at_end", False) and self._hooks is not None:
            self._hooks.forget_best_before_pruned(state, saved_now=True)

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
