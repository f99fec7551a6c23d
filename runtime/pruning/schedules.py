"""Pruning schedules (spec 3.2 / 3.4): when pruning happens and how far each step goes.

Pruning steps are the optimizer steps `start, start + freq, ...` up to `end`
(INC's `check_is_pruned_step`). `total_count = (end - start + freq) // freq - 1`
is the number of increments after the first pruning step; when it is 0 the run
is one-shot (`start == end`, or `freq > end - start`) and the single pruning
step goes straight to the target.

With `p` the index of the pruning step (0 at `start`), `P = total_count`,
`s0` the initial sparsity and `sT = min(target, max_sparsity_ratio_per_op)`:

| decay    | sparsity after step p                        |
|----------|----------------------------------------------|
| `exp`    | `1 - (1 - s0) * ((1 - sT) / (1 - s0))^(p/P)` |
| `cos`    | `(sT - s0) * (1 - cos(p/P * pi/2)) + s0`     |
| `linear` | `(sT - s0) * p/P + s0`                       |
| `cube`   | `(sT - s0) * (p/P)^3 + s0`                   |

clipped to `min(target, value)`. So step `start` gives `s0` (nothing pruned
from a dense model) and the last pruning step gives `sT`.
"""

from __future__ import annotations

import math

__all__ = ["DECAYS", "Schedule", "scheduled_sparsity"]

DECAYS = ("exp", "cos", "linear", "cube")


def scheduled_sparsity(
    decay: str, target: float, max_ratio: float, p: int, total: int, init: float = 0.0
) -> float:
    """The iterative schedule's sparsity after pruning step `p` of `total` (spec 3.4)."""
    if decay not in DECAYS:
        raise ValueError(f"sparsity_decay_type must be one of {DECAYS}, got {decay!r}")
    s_t = min(target, max_ratio)
    s0 = init
    frac = min(max(p / total, 0.0), 1.0) if total > 0 else 1.0
    if decay == "exp":
        if s0 >= 1.0:
            value = 1.0
        else:
            value = 1.0 - (1.0 - s0) * ((1.0 - s_t) / (1.0 - s0)) ** frac
    elif decay == "cos":
        value = (s_t - s0) * (1.0 - math.cos(frac * math.pi / 2.0)) + s0
    elif decay == "linear":
        value = (s_t - s0) * frac + s0
    else:
        value = (s_t - s0) * frac**3 + s0
    return min(target, value)


class Schedule:
    """The pruning steps of one pruner and the sparsity each one reaches."""

    def __init__(
        self,
        start: int,
        end: int,
        frequency: int,
        target: float,
        max_ratio: float = 1.0,
        decay: str = "exp",
    ) -> None:
        if start < 0 or end < start or frequency < 1:
            raise ValueError(
                f"a pruning schedule needs 0 <= start_step <= end_step and pruning_frequency >= 1, "
                f"got start={start}, end={end}, frequency={frequency}"
            )
        if decay not in DECAYS:
            raise ValueError(f"sparsity_decay_type must be one of {DECAYS}, got {decay!r}")
        self.start, self.end, self.frequency = start, end, frequency
        self.target, self.max_ratio, self.decay = target, max_ratio, decay
        total = (end - start + frequency) // frequency - 1
        #: one-shot: a single pruning step that goes straight to the target
        self.oneshot = total == 0
        self.total_count = max(total, 1)
        #: index of the first pruning step (1 for one-shot, as INC's completed_pruned_cnt)
        self.first_count = 1 if self.oneshot else 0
        #: the last optimizer step at which this schedule prunes
        self.last_step = start + total * frequency

    @property
    def kind(self) -> str:
        return "oneshot" if self.oneshot else "iterative"

    def is_pruning_step(self, step: int) -> bool:
        return self.start <= step <= self.end and (step - self.start) % self.frequency == 0

    def steps(self) -> list[int]:
        return list(range(self.start, self.last_step + 1, self.frequency))

    def sparsity(self, count: int, init: float = 0.0) -> float:
        """The sparsity to reach at the pruning step with index `count`."""
        if self.oneshot:
            return self.target
        return scheduled_sparsity(
            self.decay, self.target, self.max_ratio, count, self.total_count, init
        )
