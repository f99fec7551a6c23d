"""Drive a compression manager from the events of a Hugging Face `Trainer` (no transformers here).

`CompressionCallback` (`transformers.py`) hands every Trainer event to a
`TrainerHooks`, which calls the manager's INC 2.x hooks: the names in
`INC_HOOKS` and nothing else of the manager, so a manager from
`neural_compressor.training.prepare_compression` (INC 2.x) works too. Keeping
this part free of transformers lets it be checked against INC in INC's own
environment, which has no transformers.

Order of the Trainer's events (transformers 5.23, `Trainer._inner_training_loop`
and `_run_epoch`), and what each one calls:

* `on_train_begin` -> `on_train_begin(train_dataloader)`; fired after the
  optimizer was built, so QAT must keep the Parameters (it does, see below).
* `on_epoch_begin` -> `on_epoch_begin(epoch index)`.
* `on_step_begin` -> `on_step_begin(global_step)`; once per optimizer step, at
  the first micro-batch of a gradient-accumulation group.
* the forward / backward of every micro-batch (`compute_loss`; distillation
  hooks in there through `with_distillation`).
* gradient clipping (`max_grad_norm`), then `on_pre_optimizer_step` ->
  `on_before_optimizer_step()`: pruning criteria that read gradients see the
  accumulated, clipped gradients of the whole step.
* `optimizer.step()`, then `on_optimizer_step` -> `on_after_optimizer_step()`:
  masks are applied to the updated weights, before the scheduler step and
  `zero_grad`.
* `on_step_end` -> `on_step_end()` (after `global_step` was incremented).
* `on_epoch_end` -> `on_epoch_end()`; `on_train_end` -> `on_train_end()`
  (after `load_best_model_at_end`).

The Trainer trains the module object it was given, for the whole `train()`
call, so every technique must act on that object: `train_begin` checks that the
Trainer holds the manager's model (the bare module, not
`compression_manager.model`), makes this runtime's QAT prepare in place (the
eager per-module path: the FX path would build a new GraphModule the Trainer
never calls), and fails with `TrainerCompressionError` when a manager replaced
the module anyway (INC's FX QAT does).
"""

from __future__ import annotations

import logging
import math
from typing import Any

__all__ = [
    "INC_HOOKS",
    "TrainerCompressionError",
    "TrainerHooks",
    "fit_pruning_schedules",
    "freeze_fake_quant",
    "manager_module",
    "optimizer_step_hooks",
    "prepare_on",
]

log = logging.getLogger(__name__)

#: the hooks of INC 2.x's `CallBacks` this integration calls (duck typing: ours or INC's)
INC_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_step_begin",
    "on_after_compute_loss",
    "on_before_optimizer_step",
    "on_after_optimizer_step",
    "on_step_end",
    "on_epoch_end",
    "on_train_end",
)


class TrainerCompressionError(RuntimeError):
    """The Trainer and the compression manager do not act on the same module."""


def manager_module(manager: Any) -> Any:
    """The module a compression manager compresses now (`manager.model.model`)."""
    wrapper = getattr(manager, "model", None)
    return getattr(wrapper, "model", wrapper)


_WEIGHT_CONFIGS = {
    "WeightPruningConfig": "pruning",
    "QuantizationAwareTrainingConfig": "quantization-aware training",
}


def prepare_on(model: Any, configs: Any, prepare: Any = None, who: str = "the trainer") -> Any:
    """`prepare(model, configs)` (default: this runtime's `prepare_compression`) on the
    module a trainer built itself (a Trainer given a model id, a LightningCLI). Pruning
    and QAT change weights, so a module with PEFT adapters (only the adapters train) or
    weights loaded in 4 / 8 bits is refused here, as neural-coder refuses them in scripts."""
    listed = configs if isinstance(configs, list | tuple) else [configs]
    weight = sorted(
        {_WEIGHT_CONFIGS[n] for c in listed if (n := type(c).__name__) in _WEIGHT_CONFIGS}
    )
    if weight:
        what = " and ".join(weight)
        if getattr(model, "peft_config", None) is not None:
            raise TrainerCompressionError(
                f"{who} built a model with PEFT adapters: {what} would act on the frozen base "
                "weights, which only the adapters are trained around; merge the adapters first, "
                "or use distillation"
            )
        if (
            any(getattr(model, flag, False) for flag in ("is_loaded_in_4bit", "is_loaded_in_8bit"))
            or getattr(getattr(model, "config", None), "quantization_config", None) is not None
        ):
            raise TrainerCompressionError(
                f"{who} loaded the model's weights in 4 or 8 bits (quantization_config): {what} "
                "needs float weights; load the model without quantization_config"
            )
    if prepare is None:
        from ..training import prepare_compression as prepare
    return prepare(model, configs)


def freeze_fake_quant(model: Any) -> None:
    """The trainer's model after QAT converted a copy to int8: bring its fake-quant state
    to the one the conversion used (which observed the final weights once more) and
    freeze its observers (they would keep moving with every evaluation batch)."""
    import torch
    from torch.ao.quantization import disable_observer

    with torch.no_grad():
        for module in model.modules():
            weight_fake_quant = getattr(module, "weight_fake_quant", None)
            # the observed modules' weight in the observer's layout (Conv1D's is transposed)
            observed = getattr(module, "observed_weight", None)
            weight = observed() if callable(observed) else getattr(module, "weight", None)
            if isinstance(weight_fake_quant, torch.nn.Module) and isinstance(weight, torch.Tensor):
                weight_fake_quant(weight.detach().float())
    model.apply(disable_observer)


def check_callback_arguments(compression_manager: Any, configs: Any) -> None:
    """A trainer callback (HF or Lightning) takes a compression manager or configs, not both."""
    if (compression_manager is None) == (configs is None):
        raise ValueError(
            "CompressionCallback needs a compression manager or configs (not both): "
            "CompressionCallback(prepare_compression(model, confs)) or "
            "CompressionCallback(configs=confs)"
        )


def check_manager(manager: Any, who: str) -> Any:
    """`manager.callbacks`, after checking it has every hook of `INC_HOOKS`."""
    callbacks = getattr(manager, "callbacks", None)
    missing = [name for name in INC_HOOKS if not callable(getattr(callbacks, name, None))]
    if missing:
        raise TypeError(
            f"{who} needs the compression manager returned by prepare_compression(model, confs) "
            f"(neural_coder.runtime.training or neural_compressor.training); got "
            f"{type(manager).__name__}, whose .callbacks lacks {', '.join(missing)}"
        )
    return callbacks


def _prepare_qat_in_place(callbacks: Any) -> None:
    """This runtime's QAT tries FX first, which returns a new GraphModule; under the
    Trainer it must prepare the module itself (eager path, names and Parameters kept)."""
    for compressor in getattr(callbacks, "callbacks_list", ()):
        compressor = getattr(compressor, "inner", compressor)  # a pipeline stage's compressor
        spec = getattr(compressor, "spec", None)
        if (
            type(compressor).__name__ == "QATCompressor"
            and getattr(compressor, "prepared", True) is None
            and getattr(spec, "path", "") is None
            and callable(getattr(spec, "with_path", None))
        ):
            compressor.spec = spec.with_path("eager")
            log.info(
                "QAT under the Trainer: preparing the model in place (eager per-module path), "
                "so the Trainer keeps training the module it holds"
            )


def _rebuild_inc_pruners(callbacks: Any) -> None:
    """What INC 2.x's `PruningCallbacks.__init__` does with `pruners_info`, again."""
    for pruner in callbacks.pruners:
        for scope, hooks in callbacks.hooks_dict.items():
            callbacks.hooks_dict[scope] = [
                h for h in hooks if getattr(h, "__self__", None) is not pruner
            ]
    callbacks.pruners = []
    callbacks._generate_pruners()
    callbacks.generate_hooks()


def _pruner_infos(callbacks: Any) -> list[tuple[list[dict], Any]]:
    """The processed per-pruner configs of each pruning compressor, with the function
    that rebuilds its pruners from them: this runtime's `PruningCompressor` and INC 2.x's
    `PruningCallbacks` (both build their pruners from those configs)."""
    found: list[tuple[list[dict], Any]] = []
    for compressor in getattr(callbacks, "callbacks_list", ()):
        kind = type(compressor).__name__
        if kind == "PruningCompressor":
            found.append((compressor.infos, lambda c=compressor: c.bind(c.wrapper)))
        elif kind == "PruningCallbacks" and hasattr(compressor, "_generate_pruners"):
            found.append((compressor.pruners_info, lambda c=compressor: _rebuild_inc_pruners(c)))
    return found


def fit_pruning_schedules(callbacks: Any, end_step: int) -> list[int]:
    """Set the `end_step` of every iterative pruner (not pattern_lock, one-shot by design)
    to `max(start_step, end_step)` and rebuild the pruners, before training starts.
    Returns the end steps set."""
    fitted: list[int] = []
    for infos, rebuild in _pruner_infos(callbacks):
        changed = False
        for info in infos:
            if info["pruning_type"] == "pattern_lock":
                continue
            info["end_step"] = max(int(info["start_step"]), end_step)
            fitted.append(info["end_step"])
            changed = True
        if changed:
            rebuild()
    return fitted


def pruning_end_step(callbacks: Any) -> int | None:
    """The last optimizer step at which an iterative pruner still prunes (None: no pruning)."""
    ends = [
        int(info["end_step"])
        for infos, _ in _pruner_infos(callbacks)
        for info in infos
        if info["pruning_type"] != "pattern_lock"
    ]
    return max(ends, default=None)


class TrainerHooks:
    """One manager's hooks, called with the Trainer's events (see the module docstring).

    `prune_until` (a fraction in (0, 1]) fits the pruning schedule to the run at
    `train_begin`: pruning ends at `int(prune_until * max_steps)` optimizer steps
    (never before its `start_step`), the rest of the run fine-tunes the pruned
    model. `neural-coder` passes 0.8 when the script's run length is the Trainer's.
    """

    def __init__(self, manager: Any, prune_until: float | None = None) -> None:
        if prune_until is not None and not 0.0 < prune_until <= 1.0:
            raise ValueError(f"prune_until must be a fraction in (0, 1], got {prune_until!r}")
        self.manager = manager
        self.callbacks = check_manager(manager, "CompressionCallback")
        self.prune_until = prune_until
        #: the module the Trainer trained (set at `train_begin`)
        self.trained_model: Any = None
        #: the last optimizer step that prunes (set at `train_begin`; None: no pruning)
        self.pruning_end: int | None = None

    def train_begin(
        self, model: Any = None, dataloader: Any = None, max_steps: int | None = None
    ) -> None:
        if model is not None:
            self.check_same_module(model)
        if self.prune_until is not None:
            if not max_steps or max_steps < 1:
                raise TrainerCompressionError(
                    "prune_until needs the run length (the Trainer's max_steps), which is unknown "
                    "here (an IterableDataset without max_steps?); set end_step in the "
                    "WeightPruningConfig instead"
                )
            end = int(self.prune_until * max_steps)
            fitted = fit_pruning_schedules(self.callbacks, end)
            if fitted:
                log.info(
                    "pruning ends at optimizer step %d of %d (prune_until=%s)",
                    max(fitted),
                    max_steps,
                    self.prune_until,
                )
        _prepare_qat_in_place(self.callbacks)
        self.pruning_end = pruning_end_step(self.callbacks)
        self.callbacks.on_train_begin(dataloader)
        if model is not None and manager_module(self.manager) is not model:
            after = manager_module(self.manager)
            raise TrainerCompressionError(
                f"the compression manager replaced the model at on_train_begin "
                f"({type(model).__name__} -> {type(after).__name__}; QAT in FX graph mode "
                "does that), but the Trainer keeps training the object it holds, so the "
                "compression would not be trained. neural_coder.runtime prepares QAT in place "
                "under the Trainer; with INC, use a plain training loop for FX QAT"
            )
        self.trained_model = model

    def check_same_module(self, model: Any) -> None:
        """Raise `TrainerCompressionError` unless `model` is the module the manager compresses."""
        wrapper = getattr(self.manager, "model", None)
        target = manager_module(self.manager)
        if model is target:
            return
        if model is self.trained_model:
            raise TrainerCompressionError(
                "train() again after the compression finished: QAT converted "
                "compression_manager.model to int8 at the end of the previous train(), and an "
                "int8 model cannot be trained; prepare a new compression manager for another run"
            )
        if model is wrapper:
            raise TrainerCompressionError(
                "the Trainer was given compression_manager.model; give it the bare model "
                "(Trainer(model=model, ...)): the Trainer reads the model's forward signature "
                "and label names, which the wrapper hides, and CompressionCallback compresses "
                "the bare model in place"
            )
        raise TrainerCompressionError(
            f"the Trainer trains a different module ({type(model).__name__} at "
            f"{id(model):#x}) than the one given to prepare_compression ("
            f"{type(target).__name__} at {id(target):#x}); build the manager from the model "
            "object the Trainer gets (Trainer(model_init=...) builds a new one at train())"
        )

    def epoch_begin(self, epoch: float | None) -> None:
        # state.epoch is fractional progress: at an epoch's start it is the epoch index
        # (or more, after resuming mid-epoch); the small margin absorbs float sums
        self.callbacks.on_epoch_begin(math.floor(epoch + 1e-6) if epoch else 0)

    def step_begin(self, global_step: int) -> None:
        self.callbacks.on_step_begin(int(global_step))

    def before_optimizer_step(self) -> None:
        self.callbacks.on_before_optimizer_step()

    def after_optimizer_step(self) -> None:
        self.callbacks.on_after_optimizer_step()

    def step_end(self) -> None:
        self.callbacks.on_step_end()

    def epoch_end(self) -> None:
        self.callbacks.on_epoch_end()

    def train_end(self) -> None:
        self.callbacks.on_train_end()

    def forget_best_before_pruned(self, state: Any, saved_now: bool = False) -> None:
        """`load_best_model_at_end`: a checkpoint saved before pruning ended is not as sparse
        as asked, so it must not be the best one the Trainer reloads at the end of training.
        Clears the Trainer state's best metric and checkpoint when they come from such a
        step (`best_global_step`; with older transformers, the checkpoint just saved)."""
        if self.pruning_end is None:
            return
        best_step = getattr(state, "best_global_step", None)
        if best_step is None and saved_now and state.best_model_checkpoint is not None:
            best_step = state.global_step
        if best_step is None or best_step > self.pruning_end:
            return
        log.info(
            "the checkpoint of step %d predates the end of pruning (step %d): it cannot be "
            "the best model reloaded at the end of training",
            best_step,
            self.pruning_end,
        )
        state.best_metric = None
        state.best_model_checkpoint = None
        if hasattr(state, "best_global_step"):
            state.best_global_step = None


class _StepHooks:
    """The two hook handles `optimizer_step_hooks` registers; `remove()` drops both."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def optimizer_step_hooks(optimizer: Any, compression_manager: Any) -> _StepHooks:
    """Run the manager's `on_before_optimizer_step()` / `on_after_optimizer_step()` inside
    `optimizer.step()`, until `.remove()` is called on the result.

    For code that runs the backward and the step in one call the script cannot split,
    timm's `loss_scaler(loss, optimizer, clip_grad=..., parameters=...)` (NativeScaler):
    the pre-step hook sees the unscaled, clipped gradients of the backward, the post-step
    hook masks the updated weights. A step the call skips (`update_grad=False` while
    accumulating gradients, inf gradients under AMP) runs neither hook."""
    callbacks = check_manager(compression_manager, "optimizer_step_hooks")
    register_pre = getattr(optimizer, "register_step_pre_hook", None)
    register_post = getattr(optimizer, "register_step_post_hook", None)
    if not (callable(register_pre) and callable(register_post)):
        raise TypeError(
            f"optimizer_step_hooks needs a torch.optim.Optimizer; got {type(optimizer).__name__}"
        )
    return _StepHooks(
        [
            register_pre(lambda *_: callbacks.on_before_optimizer_step()),
            register_post(lambda *_: callbacks.on_after_optimizer_step()),
        ]
    )
