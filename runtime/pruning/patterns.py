"""Pruning patterns (spec 3.6): which groups of weights are pruned together.

Every pattern works on the 2-D view of a weight (`to_2d`): a Linear weight
`[out, in]` as is, a Conv weight `[out, in, *k]` permuted to `[out, *k, in]`
and flattened to `[out, prod(k) * in]` (INC permutes 4-D weights only; the same
rule is applied to Conv1d/Conv3d here).

A pattern cuts a layer into *units*, the things a mask prunes or keeps:

* `PatternNxM`: blocks of N output rows x M input columns (`channelxM` spans all
  rows, `Nxchannel` all columns, `1x1` is unstructured). A pruned block is all
  zeros.
* `PatternNInM` (`N:M`): groups of M consecutive elements along the input axis.
  A pruned group has exactly N zeros (its N lowest-score elements); the other
  M - N stay.

Mask selection (`select_global` / `select_local`) ranks unit scores and prunes
exactly `floor(ratio * units)` units (INC thresholds at a k-th value and prunes
every unit `<=` it, so ties, such as the zero scores of already pruned weights,
can prune more than asked). Units pruned at an earlier step stay pruned (their
score is `-inf`), so masks only grow within a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "Pattern",
    "PatternNInM",
    "PatternNxM",
    "from_2d",
    "get_pattern",
    "lowest_k",
    "select_global",
    "select_local",
    "to_2d",
    "unit_count",
]

_REDUCE_TYPES = ("mean", "sum", "max")
_EPS = 1e-6


def to_2d(t: torch.Tensor) -> torch.Tensor:
    """The 2-D view of a weight-shaped tensor: `[out, in]`, or `[out, prod(k) * in]`."""
    if t.dim() == 2:
        return t
    return t.movedim(1, -1).reshape(t.shape[0], -1)


def from_2d(t2: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The inverse of `to_2d` for a weight of `shape`."""
    if len(shape) == 2:
        return t2
    return t2.reshape(shape[0], *shape[2:], shape[1]).movedim(-1, 1)


def shape_2d(shape: Sequence[int]) -> tuple[int, int]:
    rows = int(shape[0])
    return rows, int(math.prod(shape[1:])) if len(shape) > 1 else 1


def unit_count(ratio: float, units: int) -> int:
    """`floor(ratio * units)`, robust to float noise (`0.29 * 100` is 29)."""
    return min(units, max(0, math.floor(ratio * units + _EPS)))


def _reduce(t: torch.Tensor, how: str, dim: int) -> torch.Tensor:
    if how == "mean":
        return t.mean(dim=dim)
    if how == "sum":
        return t.sum(dim=dim)
    return t.amax(dim=dim)


class Pattern:
    """How one layer is cut into units, and how unit decisions become an element mask."""

    #: the pattern as configured, without its ignored prefix ("4x1", "2:4")
    name: str = ""
    #: elements zeroed by one pruned unit / elements in one unit (1 for NxM, N/M for N:M)
    density: float = 1.0

    def invalid_reason(self, shape: Sequence[int]) -> str | None:
        """Why a weight of `shape` cannot take this pattern, or None."""
        raise NotImplementedError

    def units(self, shape: Sequence[int]) -> int:
        raise NotImplementedError

    def unit_elements(self, shape: Sequence[int]) -> int:
        """Elements per unit (block size, or M for N:M)."""
        raise NotImplementedError

    def unit_scores(self, score2d: torch.Tensor, keep2d: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Flat unit scores (a higher score means keep; already pruned units are `-inf`)
        and whatever `apply` needs to turn unit decisions into elements."""
        raise NotImplementedError

    def apply(self, pruned: torch.Tensor, aux: Any, keep2d: torch.Tensor) -> torch.Tensor:
        """The new 2-D keep mask: `keep2d` with the elements of the `pruned` units cleared."""
        raise NotImplementedError

    def pruned_units(self, keep2d: torch.Tensor) -> torch.Tensor:
        """Flat bool: which units the 2-D keep mask prunes."""
        raise NotImplementedError

    def lock(self, weight2d: torch.Tensor) -> torch.Tensor:
        """The pattern-lock keep mask of a weight: its zeros, collapsed to the pattern."""
        raise NotImplementedError


class PatternNxM(Pattern):
    """Blocks of N rows x M columns of the 2-D view; `"channel"` spans the whole axis."""

    def __init__(self, n: int | str, m: int | str, reduce: str = "mean") -> None:
        if reduce not in _REDUCE_TYPES:
            raise ValueError(
                f"criterion_reduce_type must be one of {_REDUCE_TYPES}, got {reduce!r}"
            )
        self.n, self.m, self.reduce = n, m, reduce
        self.name = f"{n}x{m}"
        self.density = 1.0

    def block(self, shape: Sequence[int]) -> tuple[int, int]:
        rows, cols = shape_2d(shape)
        return (rows if self.n == "channel" else int(self.n)), (
            cols if self.m == "channel" else int(self.m)
        )

    def invalid_reason(self, shape: Sequence[int]) -> str | None:
        rows, cols = shape_2d(shape)
        bn, bm = self.block(shape)
        if rows % bn or cols % bm:
            return f"its 2-D view {rows}x{cols} is not divisible by the {bn}x{bm} block"
        return None

    def units(self, shape: Sequence[int]) -> int:
        rows, cols = shape_2d(shape)
        bn, bm = self.block(shape)
        return (rows // bn) * (cols // bm)

    def unit_elements(self, shape: Sequence[int]) -> int:
        bn, bm = self.block(shape)
        return bn * bm

    def _blocks(self, t2: torch.Tensor) -> torch.Tensor:
        rows, cols = t2.shape
        bn, bm = self.block(t2.shape)
        return t2.reshape(rows // bn, bn, cols // bm, bm)

    def unit_scores(self, score2d: torch.Tensor, keep2d: torch.Tensor) -> tuple[torch.Tensor, Any]:
        blocks = self._blocks(score2d)
        reduced = _reduce(_reduce(blocks, self.reduce, 3), self.reduce, 1).flatten()
        reduced = reduced.float().masked_fill(reduced.isnan(), math.inf)
        return reduced.masked_fill(self.pruned_units(keep2d), -math.inf), None

    def apply(self, pruned: torch.Tensor, aux: Any, keep2d: torch.Tensor) -> torch.Tensor:
        rows, cols = keep2d.shape
        bn, bm = self.block(keep2d.shape)
        r, c = rows // bn, cols // bm
        cleared = pruned.view(r, 1, c, 1).expand(r, bn, c, bm).reshape(rows, cols)
        return keep2d & ~cleared

    def pruned_units(self, keep2d: torch.Tensor) -> torch.Tensor:
        return ~self._blocks(keep2d).any(dim=3).any(dim=1).flatten()

    def lock(self, weight2d: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(weight2d.shape, dtype=torch.bool, device=weight2d.device)
        return self.apply(self.pruned_units(weight2d != 0), None, ones)


class PatternNInM(Pattern):
    """N pruned out of every M consecutive input elements of the 2-D view (spec 3.6)."""

    def __init__(self, n: int, m: int, reduce: str = "mean") -> None:
        if not 0 < n < m:
            raise ValueError(f"N:M needs 0 < N < M, got {n}:{m}")
        if reduce not in _REDUCE_TYPES:
            raise ValueError(
                f"criterion_reduce_type must be one of {_REDUCE_TYPES}, got {reduce!r}"
            )
        self.n, self.m, self.reduce = n, m, reduce
        self.name = f"{n}:{m}"
        self.density = n / m

    def invalid_reason(self, shape: Sequence[int]) -> str | None:
        rows, cols = shape_2d(shape)
        if cols % self.m:
            return f"its 2-D view {rows}x{cols} has an input axis not divisible by M={self.m}"
        return None

    def units(self, shape: Sequence[int]) -> int:
        rows, cols = shape_2d(shape)
        return rows * cols // self.m

    def unit_elements(self, shape: Sequence[int]) -> int:
        return self.m

    def _groups(self, t2: torch.Tensor) -> torch.Tensor:
        return t2.reshape(-1, self.m)

    def unit_scores(self, score2d: torch.Tensor, keep2d: torch.Tensor) -> tuple[torch.Tensor, Any]:
        groups = self._groups(score2d).float()
        groups = groups.masked_fill(groups.isnan(), math.inf)
        kept = self._groups(keep2d)
        # already pruned elements are the first candidates of their group
        ranked = groups.masked_fill(~kept, -math.inf)
        idx = torch.topk(ranked, self.n, dim=1, largest=False).indices
        candidates = torch.zeros_like(kept).scatter_(1, idx, True)
        cand_scores = groups.gather(1, idx).masked_fill(~kept.gather(1, idx), 0.0)
        scores = _reduce(cand_scores, self.reduce, 1)
        return scores.masked_fill(self.pruned_units(keep2d), -math.inf), candidates

    def apply(self, pruned: torch.Tensor, aux: Any, keep2d: torch.Tensor) -> torch.Tensor:
        candidates: torch.Tensor = aux
        cleared = candidates & pruned.unsqueeze(1)
        return (self._groups(keep2d) & ~cleared).reshape(keep2d.shape)

    def pruned_units(self, keep2d: torch.Tensor) -> torch.Tensor:
        return (~self._groups(keep2d)).sum(dim=1) >= self.n

    def lock(self, weight2d: torch.Tensor) -> torch.Tensor:
        # N:M units share no whole-block structure: the existing zeros themselves are kept
        return weight2d != 0


def get_pattern(pattern: str, reduce: str = "mean") -> Pattern:
    """The pattern for a config value (`"4x1"`, `"channelx1"`, `"2:4"`, `"tile_pattern_1x1"`)."""
    core = str(pattern).split("_")[-1]
    if "mha" in str(pattern):
        raise ValueError(
            "the 'mha' (multi-head attention) pattern is not supported by this runtime"
        )
    if ":" in core:
        n, m = core.split(":")
        return PatternNInM(int(n), int(m), reduce)
    if "x" in core:
        n, m = core.split("x")
        return PatternNxM(n if n == "channel" else int(n), m if m == "channel" else int(m), reduce)
    raise ValueError(f"unknown pruning pattern {pattern!r}")


# -- selection -----------------------------------------------------------------------------
def lowest_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of exactly `k` lowest entries of a flat tensor (ties: first ones)."""
    n = scores.numel()
    if k <= 0:
        return torch.zeros(n, dtype=torch.bool, device=scores.device)
    if k >= n:
        return torch.ones(n, dtype=torch.bool, device=scores.device)
    threshold = torch.kthvalue(scores, k).values
    below = scores < threshold
    ties = scores == threshold
    need = k - int(below.sum())
    return below | (ties & (torch.cumsum(ties, 0) <= need))


def _forced(scores: torch.Tensor) -> int:
    return int((scores == -math.inf).sum())


def select_local(
    scores: Mapping[str, torch.Tensor], ratio: float, max_ratio: float = 1.0
) -> dict[str, torch.Tensor]:
    """Per layer: prune `floor(min(ratio, max_ratio) * units)` lowest units (and never
    fewer than the ones already pruned)."""
    out = {}
    for name, s in scores.items():
        n = s.numel()
        k = max(unit_count(min(ratio, max_ratio), n), _forced(s))
        out[name] = lowest_k(s, k)
    return out


def select_global(
    scores: Mapping[str, torch.Tensor],
    ratio: float,
    min_ratio: float = 0.0,
    max_ratio: float = 1.0,
) -> dict[str, torch.Tensor]:
    """One ranking across layers: prune `floor(ratio * all units)` lowest units, with
    every layer between `floor(min(min_ratio, ratio) * units)` and
    `floor(max_ratio * units)` of its own units.

    The greedy fill is exact: the layers that would exceed their cap are capped at it
    (their lowest units), and the rest of the budget is ranked again over the other
    layers until no layer exceeds its cap. This is INC's `adjust_ratio` loop, without
    its tie over-pruning and without freezing a capped layer for later steps.
    """
    names = list(scores)
    if not names:
        return {}
    device = scores[names[0]].device
    work = {name: scores[name].to(device) for name in names}
    sizes = {name: work[name].numel() for name in names}
    total = sum(sizes.values())
    forced = {name: _forced(work[name]) for name in names}
    hi = {name: max(unit_count(max_ratio, sizes[name]), forced[name]) for name in names}
    floor_ratio = min(min_ratio, ratio)
    lo = {
        name: min(max(unit_count(floor_ratio, sizes[name]), forced[name]), hi[name])
        for name in names
    }
    for name in names:
        if lo[name] > forced[name]:  # the floor is pruned first, whatever the ranking
            work[name] = work[name].masked_fill(lowest_k(work[name], lo[name]), -math.inf)
    budget = max(unit_count(ratio, total), sum(lo.values()))
    result: dict[str, torch.Tensor] = {}
    pool = names
    while pool:
        chosen = lowest_k(torch.cat([work[name] for name in pool]), budget)
        parts = dict(zip(pool, chosen.split([sizes[name] for name in pool])))
        over = [name for name in pool if int(parts[name].sum()) > hi[name]]
        if not over:
            result.update(parts)
            break
        for name in over:
            result[name] = lowest_k(work[name], hi[name])
            budget -= hi[name]
        pool = [name for name in pool if name not in over]
    return {name: result[name].to(scores[name].device) for name in names}
