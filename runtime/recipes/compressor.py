"""`RecipeCompressor`: a recipe's policies on the compressor contract (`compressor.py`).

Epochs are counted by `on_epoch_begin` calls from 0 (the argument is only
logged), so a script whose loop counts from 1 follows the recipe's epochs as
written. A loop without epoch hooks is one epoch, epoch 0 (with a warning).

Per epoch (a policy "fires" at `starting_epoch, +frequency, ...` below
`ending_epoch`, Distiller's rule): pruners update their masks at the epoch's
beginning; regularizers add their penalty gradients at every optimizer step of
the epoch and, at the end of their last epoch, turn near-zero groups into masks;
LR schedulers step at the epoch's end; distillation replaces the loss during the
epoch; the quantizer switches fake quantization on at its first epoch. Masks are
kept to the end of the run (applied after every optimizer step), so a recipe
whose policies cover consecutive epoch ranges is a multi-shot pipeline:
distillation, then pruning with the masks kept, then QAT.

With `shrink: true` on a structure pruner, the biases and batch norms after pruned
filters are masked too and the pruned channels are removed at `on_train_end`
(`shrinking.py`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from torch import nn

from .. import distributed
from ..compressor import Compressor
from .masks import MaskStore
from .pruners import RecipePruner
from .regularizers import RecipeRegularizer
from .schema import Policy
from .shrinking import RecipeShrink
from .stages import LRStage, OptimizerFinder, make_distillation, make_qat, set_fake_quant

if TYPE_CHECKING:
    import torch

    from ..model import Model
    from .config import RecipeConfig

__all__ = ["RecipeCompressor"]

log = logging.getLogger(__name__)


class RecipeCompressor(Compressor):
    kind = "recipe"

    def __init__(self, conf: RecipeConfig) -> None:
        super().__init__(conf)
        self.recipe = conf.recipe
        self.run_epochs = conf.epochs
        self.store = MaskStore()
        self.pruners: dict[int, RecipePruner] = {}
        self.regularizers: dict[int, RecipeRegularizer] = {}
        self.lr_stages = [LRStage(p) for p in self.recipe.of_kind("lr_scheduler")]
        self.qat: Any = None
        self.qat_policy: Policy | None = next(iter(self.recipe.of_kind("quantizer")), None)
        self.qat_started: int | None = None
        self.kd: Any = None
        self.kd_policy: Policy | None = next(iter(self.recipe.of_kind("distiller")), None)
        if len(self.recipe.of_kind("distiller")) > 1:
            from .schema import RecipeError

            raise RecipeError("only one distiller policy may be scheduled", self.recipe.source)
        if self.kd_policy is not None:
            self.kd = make_distillation(self.kd_policy.instance, conf.teacher_model)
        self.epoch = -1
        self.epochs_seen = 0
        self.fired: dict[int, list[int]] = {p.index: [] for p in self.recipe.policies}
        self._finder: OptimizerFinder | None = None
        #: with `shrink: true`: follower masks and the final shrink
        self.shrinker: RecipeShrink | None = None
        self._begun = False
        self._warned_no_epoch = False

    # -- life cycle ------------------------------------------------------------------------
    def bind(self, wrapper: Model) -> None:
        super().bind(wrapper)
        if self.kd is not None:
            self.kd.bind(wrapper)

    def _inner(self) -> list[Compressor]:
        return [c for c in (self.kd, self.qat) if c is not None]

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        for c in self._inner():
            c.on_model_replaced(old, new)

    def _model(self) -> nn.Module:
        assert self.wrapper is not None
        return distributed.unwrap_data_parallel(self.wrapper.model)

    def on_train_begin(self, dataloader: Any = None) -> None:
        if self._begun:
            for c in self._inner():
                c.on_train_begin(dataloader)
            return
        model = self._model()
        # names are checked against the model as the user wrote it, before QAT swaps modules
        weights = {n: p for n, p in model.named_parameters() if p.dim() >= 2}
        for policy in self.recipe.policies:
            if policy.kind == "pruner":
                self.pruners[policy.index] = RecipePruner(policy.instance, weights)
            elif policy.kind == "regularizer":
                self.regularizers[policy.index] = RecipeRegularizer(policy.instance, weights)
        if self.recipe.shrink:
            masked = [*self.pruners.values(), *self.regularizers.values()]
            self.shrinker = RecipeShrink(
                model, self.store, [kv for m in masked for kv in m.params.items()]
            )
        if self.qat_policy is not None:
            self.qat = make_qat(self.qat_policy.instance, model)
            self.qat.bind(self.wrapper)
        self._warn_beyond_run()
        for c in self._inner():
            c.on_train_begin(dataloader)
        if self.qat is not None and self.qat.prepared is not None:
            set_fake_quant(self.qat.prepared.model, False, False)
        if self.lr_stages:
            optimizer = getattr(self.conf, "optimizer", None)
            if optimizer is not None:
                self._build_lr(optimizer)
            else:
                self._finder = OptimizerFinder(list(model.parameters()), self._build_lr)
        self._begun = True

    def _build_lr(self, optimizer: torch.optim.Optimizer) -> None:
        for stage in self.lr_stages:
            stage.build(optimizer)

    def _warn_beyond_run(self) -> None:
        if self.run_epochs is None:
            for index, pruner in self.pruners.items():
                policy = self.recipe.policies[index]
                if pruner.gradual and policy.ending_epoch is None:
                    log.warning(
                        "recipe %s: %s has no ending_epoch and the run's epoch count is not "
                        "known (RecipeConfig(epochs=...)): it prunes to final_sparsity at once",
                        self.recipe.source,
                        policy.label,
                    )
            return
        for policy in self.recipe.policies:
            if policy.starting_epoch >= self.run_epochs:
                log.warning(
                    "recipe %s: policy %s starts after the run's %d epochs: it never fires",
                    self.recipe.source,
                    policy.label,
                    self.run_epochs,
                )

    # -- epochs ----------------------------------------------------------------------------
    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch = self.epochs_seen
        self.epochs_seen += 1
        e = self.epoch
        log.debug("recipe: epoch %d begins (the script's epoch %s)", e, epoch)
        for policy in self.recipe.policies:
            if policy.fires(e):
                self.fired[policy.index].append(e)
        for index, pruner in self.pruners.items():
            policy = self.recipe.policies[index]
            if policy.fires(e):
                pruner.prune(e, policy, self.store, self.run_epochs)
        self._qat_epoch(e)
        for c in self._inner():
            c.on_epoch_begin(epoch)

    def _qat_epoch(self, e: int) -> None:
        policy = self.qat_policy
        if policy is None or self.qat is None or self.qat.prepared is None:
            return
        model = self.qat.prepared.model
        if e == policy.starting_epoch:
            self.qat_started = e
            set_fake_quant(model, True, True)
        elif (
            policy.ending_epoch is not None
            and e == policy.ending_epoch
            and self.qat_started is not None
        ):
            set_fake_quant(model, True, False)  # observers frozen, fake quantization stays

    def _ensure_epoch(self) -> None:
        if self.epoch < 0:
            if not self._warned_no_epoch:
                log.warning(
                    "recipe: no on_epoch_begin was called before the first step; the run is "
                    "treated as one epoch, epoch 0"
                )
                self._warned_no_epoch = True
            self.on_epoch_begin(0)

    def on_epoch_end(self) -> list[Any]:
        self._ensure_epoch()
        e = self.epoch
        for index, reg in self.regularizers.items():
            policy = self.recipe.policies[index]
            if policy.fires(e) and e == policy.last_epoch(self.run_epochs):
                reg.apply_threshold(self.store)
        for stage in self.lr_stages:
            stage.on_epoch_end(e)
        results: list[Any] = []
        for c in self._inner():
            results.extend(c.on_epoch_end() or [])
        return results

    # -- steps -----------------------------------------------------------------------------
    def on_step_begin(self, batch_id: int) -> Any:
        self._ensure_epoch()
        for c in self._inner():
            c.on_step_begin(batch_id)
        return None

    def _kd_active(self) -> bool:
        return (
            self.kd is not None
            and self.kd_policy is not None
            and self.kd_policy.fires(max(self.epoch, 0))
        )

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor | None:
        result = None
        if self.qat is not None:
            self.qat.on_after_compute_loss(input, student_output, student_loss, teacher_output)
        if self._kd_active():
            result = self.kd.on_after_compute_loss(
                input, student_output, student_loss, teacher_output
            )
        return result

    def on_before_optimizer_step(self) -> None:
        e = max(self.epoch, 0)
        for index, reg in self.regularizers.items():
            if self.recipe.policies[index].fires(e):
                reg.add_gradients()
        for c in self._inner():
            c.on_before_optimizer_step()

    def on_after_optimizer_step(self) -> None:
        if self.shrinker is not None:
            self.shrinker.refresh(self._model())
        self.store.apply()
        for c in self._inner():
            c.on_after_optimizer_step()

    def on_step_end(self) -> Any:
        for c in self._inner():
            c.on_step_end()
        return None

    def on_before_eval(self) -> None:
        for c in self._inner():
            c.on_before_eval()

    def on_after_eval(self) -> None:
        for c in self._inner():
            c.on_after_eval()

    # -- end -------------------------------------------------------------------------------
    def on_train_end(self) -> None:
        if self._finder is not None:
            self._finder.remove()
        for index, reg in self.regularizers.items():
            # a policy that runs to the end of a run of unknown length thresholds here
            if (
                self.fired[index]
                and self.recipe.policies[index].last_epoch(self.run_epochs) is None
            ):
                reg.apply_threshold(self.store)
        for c in self._inner():
            c.on_train_end()
        if self.shrinker is not None:
            self.shrinker.shrink(self._model())

    def finalize(self) -> None:
        if self.kd is not None:
            self.kd.finalize()
        if self.qat is None:
            return
        if self.qat_started is None:
            log.warning(
                "recipe: the quantizer policy never started (the run ended before epoch %d): "
                "the model stays float",
                self.qat_policy.starting_epoch if self.qat_policy else 0,
            )
            return
        self.qat.finalize()

    # -- summary ---------------------------------------------------------------------------
    def _stage(self, policy: Policy) -> str:
        fired = self.fired.get(policy.index, [])
        if not fired:
            return f"{policy.label}: never fired (the run had {self.epochs_seen} epoch(s))"
        where = f"fired at epochs {fired[0]}-{fired[-1]} ({len(fired)}x)"
        if policy.kind == "pruner":
            pruner = self.pruners[policy.index]
            reached = pruner.reached(self.store)
            mean = sum(reached.values()) / len(reached) if reached else 0.0
            goal = max(pruner.targets.values(), default=0.0)
            what = (
                f"mean sensitivity-pruned sparsity {mean:.3f}"
                if policy.instance.cls == "SensitivityPruner"
                else f"sparsity {mean:.3f} (final target {goal:g})"
            )
            return f"{policy.label}: {where}; {what} over {len(reached)} tensor(s)"
        if policy.kind == "regularizer":
            reg = self.regularizers[policy.index]
            thresholded = (
                f"; thresholded ({reg.criterion}) sparsity "
                + ", ".join(f"{n} {s:.3f}" for n, s in reg.thresholded.items())
                if reg.thresholded
                else ""
            )
            return f"{policy.label}: {where}; {reg.steps} regularized steps, penalty now {reg.penalty():.4g}{thresholded}"
        if policy.kind == "lr_scheduler":
            stage = next(s for s in self.lr_stages if s.policy is policy)
            return f"{policy.label}: {where}; {stage.describe()}"
        if policy.kind == "distiller":
            steps = self.kd.distillation_steps if self.kd is not None else 0
            return f"{policy.label}: {where}; {steps} distillation steps"
        count = self.qat.summary().get("quantized_modules", 0) if self.qat is not None else 0
        return f"{policy.label}: {where}; fake quantization from epoch {self.qat_started}, {count} int8 module(s) after conversion"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self._inner():
            out.update(c.summary())
        per_layer = {n: self.store.sparsity(n) for n in self.store.keeps}
        zeros = sum(int((p.detach() == 0).sum()) for p in self.store.params.values())
        total = sum(p.numel() for p in self.store.params.values())
        targets = [t for p in self.pruners.values() for t in p.targets.values()]
        out.update(
            {
                "recipe": self.recipe.source,
                "recipe_epochs_seen": self.epochs_seen,
                "recipe_stages": [self._stage(p) for p in self.recipe.policies],
                "sparsity": zeros / total if total else 0.0,
                "per_layer_sparsity": per_layer,
            }
        )
        if targets and not any(
            p.instance.cls == "SensitivityPruner"
            for p in self.recipe.policies
            if p.kind == "pruner"
        ):
            out["target_sparsity"] = max(targets)
        for stage in self.lr_stages:
            if stage.lrs:
                out["learning_rate_last"] = stage.lrs[-1]
        if self.shrinker is not None:
            out.update(self.shrinker.summary)
        return out
