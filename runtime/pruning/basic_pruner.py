"""`BasicPruner`: criterion + pattern + schedule over the layers one pruner config
selected (spec 3.1-3.3), and the mask fingerprints torch.distributed compares across
ranks. The pruner kinds built on it and `get_pruner` are in `pruners.py`, whose
docstring says where this runtime differs from INC."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .criteria import Criterion, get_criterion
from .patterns import (
    Pattern,
    PatternNInM,
    PatternNxM,
    from_2d,
    get_pattern,
    select_global,
    select_local,
    shape_2d,
    to_2d,
)
from .schedules import Schedule

__all__ = ["BasicPruner"]

log = logging.getLogger("neural_coder.runtime.pruning.pruners")


class BasicPruner:
    """`BasicPruner` of INC: criterion + pattern + schedule over some layers."""

    kind = "basic"

    def __init__(self, info: Mapping[str, Any], params: Mapping[str, nn.Parameter], index: int = 0):
        self.info = dict(info)
        self.index = index
        ptype = str(info["pruning_type"])
        self.pattern: Pattern = get_pattern(
            info["pattern"], info.get("criterion_reduce_type", "mean")
        )
        self.criterion: Criterion | None = self._make_criterion(ptype)
        self.target = float(info["target_sparsity"])
        max_ratio = float(info["max_sparsity_ratio_per_op"])
        if isinstance(self.pattern, PatternNInM):
            max_ratio = min(max_ratio, self.pattern.density)
        self.max_ratio = max_ratio
        self.min_ratio = float(info["min_sparsity_ratio_per_op"])
        self.is_global = info["pruning_scope"] == "global"
        self.schedule = Schedule(
            int(info["start_step"]),
            int(info["end_step"]),
            int(info["pruning_frequency"]),
            self.target,
            max_ratio,
            str(info["sparsity_decay_type"]),
        )
        self.params: dict[str, nn.Parameter] = {}
        self.invalid: dict[str, str] = {}
        for name, p in params.items():
            reason = (
                f"its weight has {p.dim()} dimension(s)"
                if p.dim() < 2
                else self.pattern.invalid_reason(p.shape)
            )
            if reason is None:
                self.params[name] = p
            else:
                self.invalid[name] = reason
                log.warning(
                    "pruner %d: layer %s is not pruned: %s (pattern %s)",
                    index,
                    name,
                    reason,
                    self.pattern.name,
                )
        self.shapes = {name: tuple(p.shape) for name, p in self.params.items()}
        self.units = {name: self.pattern.units(shape) for name, shape in self.shapes.items()}
        #: weight-shaped keep masks in the weight's dtype; only layers with pruned elements
        self.masks: dict[str, torch.Tensor] = {}
        #: layers whose weight is no longer in the model (after a replacement)
        self.detached: set[str] = set()
        #: groups of layers whose units are the same channels (the writers of one residual
        #: stream): ranked on their mean score, so they are pruned together (`shrink=True`)
        self.coupled: list[list[str]] = []
        self.count = self.schedule.first_count
        self.init_sparsity = 0.0
        self.current_sparsity = 0.0
        self.deferred = False
        self.finished = False
        self.locked = False
        #: (step, scheduled sparsity, reached pattern sparsity) for every pruning step
        self.history: list[tuple[int, float, float]] = []
        self._step = -1
        self.reg_coeff = float(info.get("reg_coeff") or 0.0)
        self.use_reg = info.get("reg_type") == "group_lasso" and self.reg_coeff > 0
        if self.use_reg and not isinstance(self.pattern, PatternNxM):
            raise ValueError("group_lasso regularization needs an NxM pattern")

    # -- construction helpers -----------------------------------------------------------
    def _make_criterion(self, ptype: str) -> Criterion | None:
        name = ptype[: -len("_progressive")] if ptype.endswith("_progressive") else ptype
        return get_criterion(name)

    @property
    def label(self) -> str:
        return f"pruner {self.index} ({self.info['pruning_type']}, {self.pattern.name})"

    # -- masks --------------------------------------------------------------------------
    def keep2d(self, name: str) -> torch.Tensor:
        mask = self.masks.get(name)
        if mask is None:
            return torch.ones(
                shape_2d(self.shapes[name]), dtype=torch.bool, device=self.params[name].device
            )
        return to_2d(mask != 0)

    def _store(self, name: str, keep2d: torch.Tensor) -> None:
        if bool(keep2d.all()):
            self.masks.pop(name, None)
            return
        p = self.params[name]
        mask = from_2d(keep2d, self.shapes[name]).to(device=p.device, dtype=p.dtype)
        self.masks[name] = mask.contiguous()

    def active_masks(self) -> dict[str, torch.Tensor]:
        """The masks the weights are multiplied by after every optimizer step."""
        return self.masks

    def apply_masks(self) -> None:
        with torch.no_grad():
            for name, mask in self.active_masks().items():
                if name not in self.detached:
                    self.params[name].mul_(mask)

    def sync_devices(self) -> None:
        """Move masks to their weight's device and dtype (after `model.to(...)`)."""
        for store in {id(s): s for s in (self.masks, self.active_masks())}.values():
            for name, mask in list(store.items()):
                p = self.params[name]
                if mask.device != p.device or mask.dtype != p.dtype:
                    store[name] = mask.to(device=p.device, dtype=p.dtype)

    def pruned_units(self) -> tuple[int, int]:
        """(pruned units, all units) over the valid layers, from the masks."""
        pruned = total = 0
        for name in self.params:
            total += self.units[name]
            if name in self.masks:
                pruned += int(self.pattern.pruned_units(self.keep2d(name)).sum())
        return pruned, total

    def pattern_sparsity(self) -> float:
        """INC's block-wise sparsity: pruned units / units, times N/M for N:M."""
        pruned, total = self.pruned_units()
        return pruned / total * self.pattern.density if total else 0.0

    def granularity(self) -> float:
        """How far one unit moves the pattern sparsity (what 'reached' tolerates)."""
        if not self.units:
            return 0.0
        if self.is_global:
            return self.pattern.density / sum(self.units.values())
        return self.pattern.density / min(self.units.values())

    def lock_masks(self) -> None:
        """Masks from the weights' existing zeros, collapsed to the pattern."""
        for name, p in self.params.items():
            keep = self.pattern.lock(to_2d(p.detach()))
            if name in self.masks:
                keep = keep & self.keep2d(name)
            self._store(name, keep)
        self.current_sparsity = self.pattern_sparsity()

    # -- schedule -------------------------------------------------------------------------
    def is_pruning_step(self, step: int) -> bool:
        return self.schedule.is_pruning_step(step)

    def needs_grad_update(self, step: int) -> bool:
        """Whether `on_before_optimizer_step` at `step` must read gradients."""
        crit = self.criterion
        if crit is None or not crit.needs_grad or self.finished:
            return False
        if self.deferred:
            return True
        if crit.accumulates:
            return step < self.schedule.last_step
        return self.is_pruning_step(step + 1)

    def needs_regularization(self, step: int) -> bool:
        return self.use_reg and self.schedule.start <= step <= self.schedule.end

    # -- hooks ------------------------------------------------------------------------------
    def on_train_begin(self) -> bool:
        if self.info.get("resume_from_pruned_checkpoint") and not self.locked:
            self.lock_masks()
            self.init_sparsity = self.current_sparsity
            self.locked = True
            return True
        return False

    def on_step_begin(self, step: int) -> bool:
        """Update the masks if `step` is a pruning step; True when they changed."""
        changed = False
        if step == self.schedule.start and self.info.get("lock_init_sparsity") and not self.locked:
            self.lock_masks()
            self.init_sparsity = self.current_sparsity
            self.locked = True
            changed = True
        if self.finished or not (self.deferred or self.is_pruning_step(step)):
            return changed
        return self._prune(step) or changed

    def _prune(self, step: int) -> bool:
        if not self.params:
            self._advance(step, self.schedule.sparsity(self.count, self.init_sparsity))
            return False
        if self.current_sparsity > self.target:
            self.finished = True
            return False
        goal = self.schedule.sparsity(self.count, self.init_sparsity)
        if goal <= self.current_sparsity + 1e-12:
            self._advance(step, goal)
            return False
        crit = self.criterion
        assert crit is not None
        if not crit.ready(list(self.params)):
            if not self.deferred:
                log.warning(
                    "%s: step %d has no gradient scores yet (no backward ran before it); "
                    "pruning is postponed to the first step that has them",
                    self.label,
                    step,
                )
            self.deferred = True
            return False
        self._step = step
        self._update_masks(goal)
        self._advance(step, goal)
        return True

    def _advance(self, step: int, goal: float) -> None:
        self.history.append((step, goal, self.current_sparsity))
        self.count += 1
        self.deferred = False
        if step >= self.schedule.last_step:
            self.finished = True
            if self.criterion is not None:
                self.criterion.forget()

    def _new_keeps(self, goal: float) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(new 2-D keep masks, 2-D element scores) for a pattern sparsity of `goal`."""
        crit = self.criterion
        assert crit is not None
        density = self.pattern.density
        scores: dict[str, torch.Tensor] = {}
        aux: dict[str, Any] = {}
        keeps: dict[str, torch.Tensor] = {}
        elem: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for name, p in self.params.items():
                keeps[name] = self.keep2d(name)
                score = crit.score(name, p)
                if score is None:  # a layer that never received a gradient
                    score = torch.zeros_like(p)
                elem[name] = to_2d(score)
                scores[name], aux[name] = self.pattern.unit_scores(elem[name], keeps[name])
            for group in self.coupled:
                shared = torch.stack([scores[n] for n in group]).mean(dim=0)
                for n in group:
                    scores[n] = shared.to(scores[n].device)
            if self.is_global:
                chosen = select_global(
                    scores, goal / density, self.min_ratio / density, self.max_ratio / density
                )
            else:
                chosen = select_local(scores, goal / density, self.max_ratio / density)
            new = {
                name: self.pattern.apply(chosen[name], aux[name], keeps[name])
                for name in self.params
            }
        return new, elem

    def _update_masks(self, goal: float) -> None:
        new, _ = self._new_keeps(goal)
        for name, keep in new.items():
            self._store(name, keep)
        self.current_sparsity = self.pattern_sparsity()
        self.apply_masks()
        log.log(
            logging.INFO if self._step >= self.schedule.last_step else logging.DEBUG,
            "%s: step %d, sparsity %.4f (scheduled %.4f) over %d layer(s)",
            self.label,
            self._step,
            self.current_sparsity,
            goal,
            len(self.params),
        )

    def on_before_optimizer_step(self, step: int) -> None:
        if self.needs_grad_update(step):
            assert self.criterion is not None
            params = self.params
            if self.detached:
                params = {n: p for n, p in params.items() if n not in self.detached}
            self.criterion.update(params)

    def regularize(self, step: int) -> None:
        """Group lasso (proximal step on each block's L2 norm), inside [start, end]."""
        if not self.needs_regularization(step):
            return
        pattern = self.pattern
        assert isinstance(pattern, PatternNxM)
        with torch.no_grad():
            for name, p in self.params.items():
                if name in self.detached:
                    continue
                w2 = to_2d(p.detach()).float()
                blocks = pattern._blocks(w2)
                norm = blocks.pow(2).sum(dim=(1, 3)).sqrt()
                factor = (1.0 - self.reg_coeff / norm.clamp_min(1e-12)).clamp_min(0.0)
                rows, cols = w2.shape
                bn, bm = pattern.block(w2.shape)
                r, c = rows // bn, cols // bm
                full = factor.view(r, 1, c, 1).expand(r, bn, c, bm).reshape(rows, cols)
                p.mul_(from_2d(full, self.shapes[name]).to(p.dtype))

    # -- model replacement ------------------------------------------------------------------
    def rebind(self, resolve: Mapping[str, tuple[str, nn.Parameter] | None]) -> None:
        """`resolve[name]` is the (possibly renamed) layer and its weight in the new model,
        or None when the weight left the model."""
        renamed: dict[str, str] = {}
        for name in list(self.params):
            found = resolve.get(name)
            if found is None:
                self.detached.add(name)
                continue
            new_name, param = found
            self.detached.discard(name)
            if new_name != name:
                renamed[name] = new_name
            if param is not self.params[name]:
                if tuple(param.shape) != self.shapes[name]:
                    self.detached.add(name)
                    continue
                self.params[name] = param
        if renamed:
            for table in self._tables():
                moved = {renamed[k]: table.pop(k) for k in list(table) if k in renamed}
                table.update(moved)
            self.detached = {renamed.get(n, n) for n in self.detached}
        self.sync_devices()

    def _tables(self) -> list[dict[str, Any]]:
        """Every per-layer table, keyed by layer name (renamed together by `rebind`)."""
        tables: list[dict[str, Any]] = [self.params, self.masks, self.shapes, self.units]
        if self.criterion is not None:
            tables += [self.criterion.scores, getattr(self.criterion, "_scratch", {})]
        return tables

    # -- torch.distributed (see `..distributed`) ------------------------------------------
    def mask_fingerprint(self) -> torch.Tensor:
        """int64 fingerprints (`_fingerprint`) of the stored and the applied mask of every
        layer, in layer order: equal on two ranks when their masks are."""
        tables = [self.masks]
        if self.active_masks() is not self.masks:
            tables.append(self.active_masks())
        parts = [_fingerprint(table.get(name)) for table in tables for name in self.params]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)

    def mask_state(self) -> dict[str, Any]:
        """What decides the masks from now on, on the CPU (rank 0's is broadcast when the
        ranks' masks differ)."""
        return {
            "masks": {n: m.cpu() for n, m in self.masks.items()},
            "current_sparsity": self.current_sparsity,
        }

    def load_mask_state(self, state: dict[str, Any]) -> None:
        self.masks = self._to_params(state["masks"])
        self.current_sparsity = float(state["current_sparsity"])

    def _to_params(self, table: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mask tensors moved to their weight's device and dtype."""
        out = {}
        for name, mask in table.items():
            p = self.params[name]
            out[name] = mask.to(device=p.device, dtype=p.dtype).contiguous()
        return out


#: prime modulus and multiplier of the hashed position weights in `_fingerprint`
_HASH_P, _HASH_K = 2_147_483_647, 1_640_531_527


def _weighted(counts: torch.Tensor) -> list[torch.Tensor]:
    """`[sum i * c_i, sum hash(i) * c_i]` of a small int64 vector (exact, no overflow for
    any layer below 2**30 elements)."""
    i = torch.arange(counts.numel(), dtype=torch.int64)
    return [(i * counts).sum(), ((i % _HASH_P) * _HASH_K % _HASH_P * counts).sum()]


def _fingerprint(mask: torch.Tensor | None) -> torch.Tensor:
    """int64 summary of a 0/1 mask: kept count and position-weighted sums of its kept
    counts per row and per column (of its `[shape[0], -1]` view). Two reductions over
    the mask (exact: float sums of 0/1 below 2**24 per row and column); equal masks give
    equal numbers on every rank, different ones practically never do."""
    if mask is None:
        return torch.full((5,), -1, dtype=torch.int64)
    m = mask.detach().reshape(mask.shape[0], -1)
    rows = m.sum(dim=1, dtype=torch.float32).to(torch.int64).cpu()
    cols = m.sum(dim=0, dtype=torch.float32).to(torch.int64).cpu()
    return torch.stack([rows.sum(), *_weighted(rows), *_weighted(cols)])
