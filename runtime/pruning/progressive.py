"""`ProgressivePruner` (`<criterion>_progressive`, spec 3.7): between two pruning
steps, the newly pruned weights are zeroed in `progressive_steps` slices (lowest
scores first, ranked across layers). See `pruners.py` for where this differs from INC."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .basic_pruner import BasicPruner
from .patterns import from_2d, lowest_k

__all__ = ["ProgressivePruner"]

log = logging.getLogger("neural_coder.runtime.pruning.pruners")


class ProgressivePruner(BasicPruner):
    """`<criterion>_progressive`: each pruning step's new zeros arrive in slices (spec 3.7)."""

    kind = "progressive"
    progressive_steps = 4

    def __init__(self, info: Mapping[str, Any], params: Mapping[str, nn.Parameter], index: int = 0):
        super().__init__(info, params, index)
        freq = self.schedule.frequency
        steps = min(self.progressive_steps, freq)
        self.slices = steps
        self.interval = max(freq // steps, 1)
        span = self.schedule.end - self.schedule.start
        self.progressive = steps > 1 and span > self.progressive_steps
        if not self.progressive:
            log.info(
                "%s: the schedule is too short for progressive pruning; pruning basically",
                self.label,
            )
        self._applied: dict[str, torch.Tensor] | None = None
        self._pre: dict[str, torch.Tensor] = {}
        self._new_scores: dict[str, torch.Tensor] = {}
        self._structural_step = -1

    def active_masks(self) -> dict[str, torch.Tensor]:
        return self.masks if self._applied is None else self._applied

    def _tables(self) -> list[dict[str, Any]]:
        tables = super()._tables() + [self._pre, self._new_scores]
        return tables if self._applied is None else [*tables, self._applied]

    def mask_state(self) -> dict[str, Any]:
        state = super().mask_state()
        state["applied"] = (
            None if self._applied is None else {n: m.cpu() for n, m in self._applied.items()}
        )
        state["pre"] = {n: t.cpu() for n, t in self._pre.items()}
        state["new_scores"] = {n: t.cpu() for n, t in self._new_scores.items()}
        return state

    def load_mask_state(self, state: dict[str, Any]) -> None:
        super().load_mask_state(state)
        applied = state.get("applied")
        self._applied = None if applied is None else self._to_params(applied)
        devices = {n: p.device for n, p in self.params.items()}
        self._pre = {n: t.to(devices[n]) for n, t in state.get("pre", {}).items()}
        self._new_scores = {n: t.to(devices[n]) for n, t in state.get("new_scores", {}).items()}

    def on_step_begin(self, step: int) -> bool:
        if not self.progressive:
            return super().on_step_begin(step)
        changed = super().on_step_begin(step)
        if changed or self._applied is None or self.is_pruning_step(step):
            return changed
        offset = step - self._structural_step
        if offset <= 0 or offset % self.interval:
            return False
        idx = offset // self.interval
        if idx >= self.slices - 1:
            self._applied = None  # the full masks
        else:
            self._interpolate(idx + 1)
        self.apply_masks()
        return True

    def _update_masks(self, goal: float) -> None:
        if not self.progressive:
            super()._update_masks(goal)
            return
        pre = {name: self.keep2d(name) for name in self.params}
        new, elem = self._new_keeps(goal)
        for name, keep in new.items():
            self._store(name, keep)
        self.current_sparsity = self.pattern_sparsity()
        step = self._step
        last = self.count >= self.schedule.total_count or step >= self.schedule.last_step
        if last:
            self._applied = None
        else:
            self._pre = pre
            self._new_scores = {
                name: elem[name].float().masked_fill(~(pre[name] & ~new[name]), math.inf)
                for name in self.params
            }
            self._structural_step = step
            self._interpolate(1)
        self.apply_masks()
        log.debug(
            "%s: sparsity %.4f (scheduled %.4f), applied progressively",
            self.label,
            self.current_sparsity,
            goal,
        )

    def _interpolate(self, idx: int) -> None:
        """Apply `idx / slices` of the newly pruned elements (lowest scores, across layers)."""
        names = list(self.params)
        flat = torch.cat([self._new_scores[n].flatten() for n in names])
        total_new = int((flat != math.inf).sum())
        chosen = lowest_k(flat, total_new * idx // self.slices)
        applied: dict[str, torch.Tensor] = {}
        for n, part in zip(names, chosen.split([self._new_scores[n].numel() for n in names])):
            keep = self._pre[n] & ~part.view(self._new_scores[n].shape)
            if not bool(keep.all()):
                p = self.params[n]
                mask = from_2d(keep, self.shapes[n]).to(device=p.device, dtype=p.dtype)
                applied[n] = mask.contiguous()
        self._applied = applied
