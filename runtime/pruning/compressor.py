"""`PruningCompressor`: INC 2.x `PruningCallbacks` on the compressor contract.

Built from a `WeightPruningConfig`; `bind` expands it (`process_pruning_config`)
into one pruner per dict, each over the modules it selects in the wrapper's
current model (spec 1.5 / 2.6):

* module names `re.search`-ed by one of `op_names`, class name containing one of
  `pruning_op_types`, a `weight` Parameter, no `excluded_op_names` match;
* the classifier head, the last `nn.Linear` in `named_modules()` order, is left
  out and logged (INC >= 2.2). Unlike INC, which appends the head's name to the
  exclusion regexes (so a head called `fc` also excluded `fc1`, `fc2`), only the
  head itself is left out.

Hooks (INC semantics):

* `on_step_begin`: on a pruning step, new masks, applied at once; a second call
  in the same optimizer step does nothing. The step number passed in is ignored.
* `on_before_optimizer_step`: gradient criteria read `.grad` (only while a later
  pruning step still needs them).
* `on_after_optimizer_step`: group-lasso shrink (inside the window), weights
  multiplied by their masks (`masking.py`),
  then the step counter advances. Progress counts these calls only (spec 9.2).
* `on_train_end`: logs INC's three sparsity ratios (spec 3.8); with `shrink=True`
  (not in INC) then removes the pruned channels (`structured.py`, `shrink.py`).

Composability: layers are keyed by module name and hold the weight Parameter, not
the module; `on_model_replaced` resolves each name again in the new model (a
module at the same name whose `.weight` is the same Parameter; else the module
that now holds that Parameter; else the layer is detached and no longer masked).

torch.distributed (DDP): a model given wrapped in `DistributedDataParallel` is
pruned through the module inside (layer names without `module.`). Every rank
computes the same masks: DDP keeps the weights identical and averages the
gradients before `on_before_optimizer_step`, and scoring, ranking and tie
breaking are deterministic. As a safety net the masks are compared across
ranks (one all-reduce of mask fingerprints, started at the change and read
after the optimizer step, so it runs during forward and backward) at the first
change, every `CHECK_EVERY`-th, the last pruning step and `on_train_end`; when
they differ (a model that is not trained with DDP, weights that diverged), rank
0's masks are broadcast and applied, and a warning says why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import distributed
from ..compressor import Compressor
from ..config import process_pruning_config
from .copies import AveragedCopies
from .masking import multiply_masks
from .pruners import BasicPruner, get_pruner
from .selection import classifier_head, select_modules, why_unselected
from .structured import StructuredShrink

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["PruningCompressor", "classifier_head", "select_modules", "sparsity_ratios"]

log = logging.getLogger(__name__)

#: under torch.distributed, the masks are compared across ranks at every this many
#: mask changes (and at the first and the last): each comparison is one collective
CHECK_EVERY = 8


def _is_matmul_or_conv(module: nn.Module) -> bool:
    cls = type(module).__name__
    return ("Linear" in cls or "Conv" in cls) and isinstance(
        getattr(module, "weight", None), torch.Tensor
    )


def sparsity_ratios(pruners: list[BasicPruner], model: nn.Module) -> dict[str, float]:
    """INC's `get_sparsity_ratio` (spec 3.8): elementwise over Linear/Conv weights,
    elementwise over all parameters, and block-wise over Linear/Conv weights."""
    pruned: dict[int, int] = {}
    for pruner in pruners:
        for name, p in pruner.params.items():
            if name not in pruner.detached:
                pruned[id(p)] = int((p.detach() == 0).sum())
    linear_conv = 0
    for module in model.modules():
        if _is_matmul_or_conv(module):
            linear_conv += module.weight.numel()  # type: ignore[union-attr]
    all_params = sum(p.numel() for p in model.parameters())
    zeros = sum(pruned.values())
    blockwise = 0
    for pruner in pruners:
        in_pruner = sum(p.numel() for p in pruner.params.values())
        blockwise += int(in_pruner * pruner.pattern_sparsity())
    return {
        "elementwise_over_matmul_gemm_conv": zeros / linear_conv if linear_conv else 0.0,
        "elementwise_over_all": zeros / all_params if all_params else 0.0,
        "blockwise_over_matmul_gemm_conv": blockwise / linear_conv if linear_conv else 0.0,
    }


class PruningCompressor(Compressor):
    """Training-time weight pruning (INC 2.x `PruningCallbacks`)."""

    kind = "pruning"

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self.infos: list[dict[str, Any]] = process_pruning_config(conf)
        self.pruners: list[BasicPruner] = []
        #: optimizer steps seen (`on_after_optimizer_step` calls)
        self.global_step = 0
        self._handled_step = -1
        self._apply_params: list[torch.Tensor] = []
        self._apply_masks: list[torch.Tensor] = []
        self._grad_pruners: list[BasicPruner] = []
        self._reg_pruners: list[BasicPruner] = []
        self._pending: list[BasicPruner] = []
        self._final: dict[str, Any] | None = None
        self.head: str | None = None
        #: INC's three ratios, set at `on_train_end`
        self.sparsity_report: dict[str, float] | None = None
        #: under torch.distributed: mask changes checked across ranks, and how many of
        #: them had to be replaced by rank 0's masks
        self.dist_mask_checks = 0
        self.dist_mask_repairs = 0
        self._pending_check: distributed.Agreement | None = None
        self._changes = 0
        self._checked_changes = 0
        #: with `shrink=True`: the example inputs, follower masks and the final shrink
        self.structured: StructuredShrink | None = None
        #: averaged copies of the model the masks also apply to (`track_copy`)
        self._copies = AveragedCopies()

    # -- life cycle -------------------------------------------------------------------------
    def bind(self, wrapper: Model) -> None:
        super().bind(wrapper)
        model = distributed.unwrap_data_parallel(wrapper.model)
        self.head = classifier_head(model)
        self.pruners = []
        self._unselected: dict[int, str] = {}
        for index, info in enumerate(self.infos):
            params = select_modules(info, model, self.head)
            if not params:
                self._unselected[index] = why_unselected(info, model, self.head)
                log.warning(
                    "pruning: pruner %d selects no module: %s", index, self._unselected[index]
                )
            self.pruners.append(get_pruner(info, params, index))
        claimed: dict[str, int] = {}
        for pruner in self.pruners:
            for name in pruner.params:
                if name in claimed:
                    log.warning(
                        "pruning: %s is claimed by pruners %d and %d; both masks apply",
                        name,
                        claimed[name],
                        pruner.index,
                    )
                claimed.setdefault(name, pruner.index)
        self._pending = [p for p in self.pruners if not p.finished]
        if any(info.get("shrink") for info in self.infos) and self.structured is None:
            self.structured = StructuredShrink(model)
        self._refresh()

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        """Resolve every layer in the new model: the module at the same name holding the
        same weight Parameter; else the module (any name) holding that Parameter; else a
        same-shaped weight Parameter at the same name (adopted); else the layer is
        detached (no longer masked, still reported)."""
        modules = dict(distributed.unwrap_data_parallel(new).named_modules())
        by_param: dict[int, str] = {}
        for other, m in modules.items():
            w = getattr(m, "weight", None)
            if isinstance(w, nn.Parameter):
                by_param.setdefault(id(w), other)
        for pruner in self.pruners:
            resolve: dict[str, tuple[str, nn.Parameter] | None] = {}
            for name, param in pruner.params.items():
                module = modules.get(name)
                weight = getattr(module, "weight", None) if module is not None else None
                if weight is param:
                    resolve[name] = (name, param)
                elif id(param) in by_param:
                    log.debug("pruning: layer %s is now %s", name, by_param[id(param)])
                    resolve[name] = (by_param[id(param)], param)
                elif isinstance(weight, nn.Parameter) and weight.shape == param.shape:
                    log.warning(
                        "pruning: %s has a new weight Parameter after the model was replaced; "
                        "its mask now applies to the new one",
                        name,
                    )
                    resolve[name] = (name, weight)
                else:
                    log.debug("pruning: the weight of %s left the model; no longer masked", name)
                    resolve[name] = None
            pruner.rebind(resolve)
        self._refresh()

    def finalize(self) -> None:
        self._finish_check()
        if self._final is None:
            self._final = self._measure()

    # -- per-step machinery -------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild the lists the per-step hooks use."""
        params: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        for pruner in self.pruners:
            for name, mask in pruner.active_masks().items():
                if name not in pruner.detached:
                    params.append(pruner.params[name])
                    masks.append(mask)
        if self.structured is not None and self.wrapper is not None:
            model = distributed.unwrap_data_parallel(self.wrapper.model)
            extra_params, extra_masks = self.structured.follower_masks(model, self.pruners)
            params += extra_params
            masks += extra_masks
        self._apply_params, self._apply_masks = params, masks
        self._bind_copies()
        step = self.global_step
        self._grad_pruners = [
            p
            for p in self.pruners
            if p.criterion is not None and p.criterion.needs_grad and not p.finished
        ]
        self._reg_pruners = [p for p in self.pruners if p.use_reg and step <= p.schedule.end]

    def _apply(self) -> None:
        """Every masked weight times its mask (the per-step work)."""
        try:
            multiply_masks(self._apply_params, self._apply_masks)
        except RuntimeError:
            # a weight moved (model.to(device)) or changed dtype: follow it
            for pruner in self.pruners:
                pruner.sync_devices()
            self._refresh()
            multiply_masks(self._apply_params, self._apply_masks, per_layer=True)

    # -- averaged copies ----------------------------------------------------------------------
    def track_copy(self, holder: Any) -> None:
        """Apply the masks to `holder`'s copy of the model too (`copies.py`); None (no
        copy on this rank) does nothing."""
        model = distributed.unwrap_data_parallel(self.wrapper.model) if self.wrapper else None
        if holder is None or model is None:
            return
        prunable = [p for pruner in self.pruners for p in pruner.params.values()]
        self._copies.track(holder, model, self._apply_params, self._apply_masks, prunable)

    # -- hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, dataloader: Any = None) -> None:
        changed = False
        for pruner in self.pruners:
            changed = pruner.on_train_begin() or changed
        if changed:
            self._refresh()
            self._apply()
            self._changes += 1
            self._check_ranks()
            self._finish_check()

    def on_step_begin(self, batch_id: int) -> None:
        step = self.global_step
        if step == self._handled_step:
            return None
        self._handled_step = step
        if not self._pending:
            return None
        changed = False
        for pruner in self._pending:
            changed = pruner.on_step_begin(step) or changed
        if changed or any(p.finished for p in self._pending):
            self._pending = [p for p in self._pending if not p.finished]
            self._refresh()
        if changed:
            self._changes += 1
            if self._changes == 1 or self._changes % CHECK_EVERY == 0 or not self._pending:
                self._check_ranks()
        return None

    def _check_ranks(self) -> None:
        """Under torch.distributed, after the masks changed: start comparing them across
        ranks (one all-reduce of fingerprints); `_finish_check` reads the answer."""
        if not distributed.is_distributed():
            return
        self._finish_check()
        self.dist_mask_checks += 1
        self._checked_changes = self._changes
        fingerprint = torch.cat([p.mask_fingerprint() for p in self.pruners])
        self._pending_check = distributed.start_agree(fingerprint)

    def _finish_check(self) -> None:
        """The masks compared by `_check_ranks`: kept when equal on every rank, else
        replaced by rank 0's (broadcast) and applied."""
        pending, self._pending_check = self._pending_check, None
        if pending is None or pending.result():
            return
        self.dist_mask_repairs += 1
        if self.dist_mask_repairs == 1:
            log.warning(
                "pruning: the masks differ across ranks at step %d (the weights or gradient "
                "scores are not the same on every rank: train the model wrapped in "
                "torch.nn.parallel.DistributedDataParallel); rank 0's masks are used",
                self.global_step,
            )
        states = distributed.broadcast_object([p.mask_state() for p in self.pruners])
        for pruner, state in zip(self.pruners, states):
            pruner.load_mask_state(state)
        self._refresh()
        self._apply()

    def on_before_optimizer_step(self) -> None:
        if self._grad_pruners:
            step = self.global_step
            for pruner in self._grad_pruners:
                pruner.on_before_optimizer_step(step)

    def on_after_optimizer_step(self) -> None:
        if self._pending_check is not None:
            self._finish_check()
        step = self.global_step
        if self._reg_pruners:
            for pruner in self._reg_pruners:
                pruner.regularize(step)
            if step >= max(p.schedule.end for p in self._reg_pruners):
                self._reg_pruners = []
        if self.structured is not None and self.structured.followers_pending():
            self._refresh()
            self.structured.couple(self.pruners)
        if self._apply_params:
            self._apply()
        self.global_step = step + 1

    def _bind_copies(self) -> None:
        """The copies' weights for the masks applied now (found again in each copy)."""
        if self._copies and self.wrapper is not None:
            model = distributed.unwrap_data_parallel(self.wrapper.model)
            self._copies.bind(model, self._apply_params, self._apply_masks)

    def on_step_end(self) -> None:
        # after the script's own `ema.update(model)`, which follows the optimizer step
        if self._copies.copies:
            self._copies.apply()

    def on_epoch_end(self) -> list[Any]:
        if self._copies:  # bound again: the script may have replaced or moved the copy
            self._bind_copies()
            self._copies.apply()
        return []

    def on_train_end(self) -> None:
        if self._copies:
            self._bind_copies()
            self._copies.apply()
        if self._changes != self._checked_changes:
            self._check_ranks()  # the masks training ended with
        self._finish_check()
        model = self.wrapper.model if self.wrapper is not None else None
        if model is not None:
            model = distributed.unwrap_data_parallel(model)
            self.sparsity_report = sparsity_ratios(self.pruners, model)
            for key, value in self.sparsity_report.items():
                log.info("pruning: %s = %.4f", key, value)
        self._final = self._measure()
        if self.structured is not None and model is not None:
            self._final.update(self.shrink())

    def shrink(self, example_inputs: Any = None) -> dict[str, Any]:
        """Remove the pruned channels now (`shrink.shrink_model`); the summary keys. The
        masks are dropped: the pruned weights are gone, and training is over."""
        if self.wrapper is None:
            raise RuntimeError("shrink needs a compressor bound to a model")
        if self.structured is None:
            self.structured = StructuredShrink(self.wrapper.model)
        model = distributed.unwrap_data_parallel(self.wrapper.model)
        result = self.structured.shrink(model, example_inputs)
        if self.structured.report is not None:
            for pruner in self.pruners:
                pruner.rebind({name: None for name in pruner.params})
            self._pending = []
            self._refresh()
        if self._final is not None:
            self._final.update(result)
        return result

    # -- summary -------------------------------------------------------------------------------
    def _target(self) -> float:
        targets = {float(info["target_sparsity"]) for info in self.infos}
        if len(targets) == 1:
            return targets.pop()
        wc = getattr(self.conf, "weight_compression", None)
        if wc is not None and "target_sparsity" in wc:
            return float(wc["target_sparsity"])
        return max(targets)

    def _measure(self) -> dict[str, Any]:
        per_layer: dict[str, float] = {}
        zeros = total = 0
        seen: set[int] = set()
        for pruner in self.pruners:
            for name, p in pruner.params.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                z = int((p.detach() == 0).sum())
                per_layer[name] = z / p.numel() if p.numel() else 0.0
                zeros += z
                total += p.numel()
        notes: list[str] = []
        reached = bool(self.pruners)
        for pruner in self.pruners:
            ok, note = self._pruner_status(pruner)
            reached = reached and ok
            if note:
                notes.append(note if len(self.pruners) == 1 else f"pruner {pruner.index}: {note}")
        if not self.pruners:
            notes.append("no pruner was configured")
        summary: dict[str, Any] = {
            "target_sparsity": self._target(),
            "sparsity": zeros / total if total else 0.0,
            "per_layer_sparsity": per_layer,
            "pruning_target_reached": reached,
            "pruning_steps_seen": self.global_step,
        }
        if self._copies:
            summary["averaged_copy_sparsity"] = self._copies.sparsity()
        skipped = {n: r for pr in self.pruners for n, r in pr.invalid.items()}
        if skipped:
            summary["pruning_skipped_layers"] = skipped
        if not reached and notes:
            summary["pruning_note"] = "; ".join(notes)
        return summary

    def _pruner_status(self, pruner: BasicPruner) -> tuple[bool, str]:
        """(target reached within one unit, why not)."""
        if not pruner.params:
            if pruner.invalid:
                return False, (
                    f"no layer fits the pattern {pruner.pattern.name} "
                    f"({', '.join(sorted(pruner.invalid))} skipped)"
                )
            return False, self._unselected.get(
                pruner.index, "no layer matched op_names / pruning_op_types"
            )
        if pruner.kind == "pattern_lock":
            if pruner.locked:
                return True, ""
            return False, self._step_note(pruner.schedule.start)
        reached_sparsity = pruner.pattern_sparsity()
        if reached_sparsity >= pruner.target - pruner.granularity() - 1e-9:
            return True, ""
        if self.global_step == 0:
            return False, (
                "no optimizer step was reported (on_after_optimizer_step was never called), "
                "so the pruning schedule never advanced"
            )
        if not pruner.finished:
            if self.global_step <= pruner.schedule.last_step:
                return False, self._step_note(pruner.schedule.last_step, pruner.schedule.end)
            if pruner.deferred:
                return False, "the pruning step was waiting for gradient scores"
        if pruner.max_ratio < pruner.target:
            return False, (
                f"max_sparsity_ratio_per_op={pruner.max_ratio:g} caps every layer below the "
                f"target {pruner.target:g} (reached {reached_sparsity:.4f})"
            )
        return False, (
            f"the per-layer caps (max_sparsity_ratio_per_op={pruner.max_ratio:g}) leave only "
            f"{reached_sparsity:.4f} prunable"
        )

    def _step_note(self, last_step: int, end_step: int | None = None) -> str:
        end = last_step if end_step is None else end_step
        what = (
            f"end_step {end}"
            if end == last_step
            else f"the last pruning step {last_step} (end_step {end})"
        )
        return f"{what} was never reached: the run had {self.global_step} optimizer steps"

    def summary(self) -> dict[str, Any]:
        if self._final is not None:
            return dict(self._final)
        return self._measure()
