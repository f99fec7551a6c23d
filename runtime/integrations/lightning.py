"""PyTorch Lightning integration: training-time compression under `Trainer.fit`.

Lightning runs the training loop, so a `Callback` carries the manager's INC 2.x
hooks. The shapes `neural-coder` generates::

    compression_manager = prepare_compression(model, [WeightPruningConfig(...), ...])
    trainer.callbacks.append(CompressionCallback(compression_manager, prune_until=0.8))
    trainer.fit(model, train_loader, val_loader)

and, where `LightningCLI` builds the module and runs `fit` itself, a callback that
prepares the manager on the LightningModule the Trainer is given::

    LightningCLI(LitModel, trainer_defaults={"callbacks": [CompressionCallback(configs=[...])]})

What each Lightning event calls (automatic and manual optimization alike):

* `setup(stage="fit")`: prepares the manager from `configs` (second shape), or
  checks that the Trainer fits the module the manager compresses; with a
  distillation config, wraps the module's `training_step` (below).
* `on_train_start` -> `on_train_begin(train_dataloader)` after fitting the pruning
  schedule to `trainer.estimated_stepping_batches` (`prune_until`); the optimizers
  exist already, so QAT prepares the module in place (Parameters kept).
* `on_train_epoch_start` -> `on_epoch_begin(current_epoch)`.
* `on_train_batch_start` -> `on_step_begin(global_step)` at the first micro-batch
  of each optimizer step (gradient accumulation groups several batches).
* `on_before_optimizer_step` -> `on_before_optimizer_step()`, after the backward
  of the step's last micro-batch.
* a post-step hook on the optimizer (`register_step_post_hook`) ->
  `on_after_optimizer_step()` then `on_step_end()`: masks reach the updated
  weights before anything reads them. A step that AMP skips (inf gradients) is no
  step. One optimizer only: with several, each step would advance the schedules.
* `on_train_epoch_end` -> `on_epoch_end()`; `on_train_end` -> `on_train_end()`.

Distillation: the loss is the one `training_step` returns. The wrapper records
the first module call the step makes (the LightningModule itself, `self(x)`, or
one of its direct children, `self.backbone(x)`), runs the teacher's module at the
same path on the same arguments, and returns
`on_after_compute_loss(inputs, student_output, loss, teacher_output)`.

After QAT, `compression_manager.model` is the int8 model; the LightningModule
the Trainer holds stays the fake-quant model, its observers frozen, so
`trainer.validate` / `trainer.test` measure the int8 model's quantization.

Lightning comes as `lightning` (`lightning.pytorch`) and as `pytorch_lightning`;
the callback subclasses the first one installed, and both Trainers take it (they
call callbacks by their hook names). This module needs one of them; the rest of
`neural_coder.runtime` does not.
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - depends on which package is installed
    try:
        from pytorch_lightning import Callback
    except ImportError as _missing:
        raise ImportError(
            "neural_coder.runtime.integrations.lightning needs PyTorch Lightning "
            "(pip install lightning); the rest of neural_coder.runtime works without it"
        ) from _missing

import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..distillation.compressor import call_model
from .hooks import (
    TrainerCompressionError,
    TrainerHooks,
    check_callback_arguments,
    freeze_fake_quant,
    manager_module,
    prepare_on,
)

__all__ = ["CompressionCallback", "TrainerCompressionError"]

_WRAPPED = "_neural_coder_lightning_distillation"


class CompressionCallback(Callback):
    """A Lightning `Callback` that runs a compression manager's hooks (see the module docstring).

    Give it the manager (`CompressionCallback(prepare_compression(model, confs))`), or
    the configs (`CompressionCallback(configs=[...])`) to prepare the manager on the
    module `Trainer.fit` trains (with `prepare`, INC 2.x's `prepare_compression`, when
    the configs are INC's). `prune_until=0.8` ends pruning at 80 % of the run's
    optimizer steps, as Lightning estimates them when training starts.
    """

    def __init__(
        self,
        compression_manager: Any = None,
        *,
        configs: Any = None,
        prune_until: float | None = None,
        prepare: Any = None,
    ) -> None:
        check_callback_arguments(compression_manager, configs)
        if prune_until is not None and not 0.0 < prune_until <= 1.0:
            raise ValueError(f"prune_until must be a fraction in (0, 1], got {prune_until!r}")
        self.configs = configs
        self.prepare = prepare  # prepare_compression of INC 2.x, or this runtime's (None)
        self.prune_until = prune_until
        self.compression_manager = compression_manager
        self.hooks = (
            None
            if compression_manager is None
            else TrainerHooks(compression_manager, prune_until=prune_until)
        )
        self._step_open = False
        self._handles: list[Any] = []

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit":
            return
        if self.hooks is None:
            self.compression_manager = prepare_on(
                pl_module, self.configs, self.prepare, "the Lightning Trainer"
            )
            self.hooks = TrainerHooks(self.compression_manager, prune_until=self.prune_until)
        self.hooks.check_same_module(pl_module)
        conf = getattr(self.compression_manager, "conf", None)
        if getattr(conf, "distillation", None) is not None:
            _wrap_training_step(pl_module, self.compression_manager)

    def _require_hooks(self) -> TrainerHooks:
        if self.hooks is None:
            raise TrainerCompressionError(
                "CompressionCallback was not set up: Lightning calls setup(stage='fit') before "
                "training; give the callback to the Trainer that runs fit()"
            )
        return self.hooks

    # -- training -------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        hooks = self._require_hooks()
        optimizers = list(getattr(trainer, "optimizers", []) or [])
        if len(optimizers) > 1:
            raise TrainerCompressionError(
                f"the LightningModule has {len(optimizers)} optimizers: each optimizer step "
                "would advance the compression schedules; compress a module trained by one optimizer"
            )
        max_steps = _run_length(trainer) if self.prune_until is not None else None
        hooks.train_begin(pl_module, _train_dataloader(trainer), max_steps=max_steps)
        self._step_open = False
        self._handles = [o.register_step_post_hook(self._after_step) for o in optimizers]

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._require_hooks().epoch_begin(trainer.current_epoch)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._step_open:
            self._require_hooks().step_begin(trainer.global_step)
            self._step_open = True

    def on_before_optimizer_step(
        self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any
    ) -> None:
        self._require_hooks().before_optimizer_step()

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        hooks = self._require_hooks()
        hooks.after_optimizer_step()
        hooks.step_end()
        self._step_open = False

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._require_hooks().epoch_end()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        hooks = self._require_hooks()
        hooks.train_end()
        trained = hooks.trained_model
        if (
            isinstance(trained, nn.Module)
            and manager_module(self.compression_manager) is not trained
        ):
            freeze_fake_quant(trained)


def _run_length(trainer: Any) -> int | None:
    steps = getattr(trainer, "estimated_stepping_batches", None)
    if isinstance(steps, int | float) and math.isfinite(steps) and steps >= 1:
        return int(steps)
    return None


def _train_dataloader(trainer: Any) -> Any:
    try:
        return trainer.train_dataloader
    except Exception:  # noqa: BLE001 - older Lightning raises when it is not loaded yet
        return None


# -- distillation through training_step ------------------------------------------------------
class _FirstCall:
    """Records the first top-level call of `module` or of one of its direct children."""

    def __init__(self, module: nn.Module) -> None:
        self.path: str | None = None
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.output: Any = None
        self._depth = 0
        self._handles: list[Any] = []
        for path, child in [("", module), *module.named_children()]:
            self._handles.append(
                child.register_forward_pre_hook(
                    functools.partial(self._enter, path), with_kwargs=True
                )
            )
            self._handles.append(
                child.register_forward_hook(functools.partial(self._leave, path), always_call=True)
            )

    def _enter(self, path: str, module: nn.Module, args: Any, kwargs: Any) -> None:
        if self._depth == 0 and self.path is None:
            self.path, self.args, self.kwargs = path, tuple(args), dict(kwargs)
        self._depth += 1

    def _leave(self, path: str, module: nn.Module, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and path == self.path and self.output is None:
            self.output = output

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _wrap_training_step(pl_module: nn.Module, manager: Any) -> None:
    current = pl_module.training_step  # type: ignore[attr-defined]
    if getattr(current, _WRAPPED, None) is manager:
        return
    teacher = manager.conf.distillation.teacher_model
    original = current

    @functools.wraps(original)
    def training_step(*args: Any, **kwargs: Any) -> Any:
        record = _FirstCall(pl_module)
        try:
            result = original(*args, **kwargs)
        finally:
            record.remove()
        loss = result.get("loss") if isinstance(result, Mapping) else result
        if not isinstance(loss, torch.Tensor):
            return result  # a step that returns no loss does not train
        if record.path is None:
            raise TrainerCompressionError(
                f"distillation: {type(pl_module).__name__}.training_step called neither the "
                "module nor one of its direct submodules, so there is no student output to "
                "distil; call the network as self(x) or self.<submodule>(x)"
            )
        teacher_module = teacher.get_submodule(record.path) if record.path else teacher
        teacher_output = _teacher_output(teacher_module, record, loss.device)
        inputs = record.kwargs or (record.args[0] if len(record.args) == 1 else record.args)
        total = manager.callbacks.on_after_compute_loss(inputs, record.output, loss, teacher_output)
        if isinstance(total, list):  # INC 2.x: [] without a loss, a list with several
            total = total[-1] if total else loss
        if isinstance(result, Mapping):
            return {**result, "loss": total}
        return total

    setattr(training_step, _WRAPPED, manager)
    pl_module.training_step = training_step  # type: ignore[method-assign]


def _teacher_output(teacher: nn.Module, record: _FirstCall, device: torch.device) -> Any:
    if any(p.device != device for p in teacher.parameters()):
        teacher.to(device)
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.no_grad():
            if record.kwargs:
                return teacher(*record.args, **record.kwargs)
            return call_model(teacher, record.args if len(record.args) != 1 else record.args[0])
    finally:
        teacher.train(was_training)
