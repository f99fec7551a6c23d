"""Pruning criteria (spec 3.5): per-element scores, a higher score means "keep".

| name            | updated                             | score                           |
|-----------------|-------------------------------------|---------------------------------|
| `magnitude`     | at the pruning step                 | `|W|`                           |
| `gradient`      | `on_before_optimizer_step`          | `|dW|` of the latest step       |
| `snip`          | `on_before_optimizer_step`          | `|W * dW|` of the latest step   |
| `snip_momentum` | every `on_before_optimizer_step`    | `S <- 0.9 S + 1.0 |W * dW|`     |

Scores are keyed by layer name and live beside the weight (same device and
dtype); gradient criteria update them in place (one scratch buffer per layer
for `snip_momentum`, no allocation per step). `gradient` and `snip` only keep
the latest step, so they are computed only right before a pruning step; the
pruner says when (`needs_update`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = [
    "CRITERIA",
    "Criterion",
    "GradientCriterion",
    "MagnitudeCriterion",
    "SnipCriterion",
    "SnipMomentumCriterion",
    "get_criterion",
]


class Criterion:
    """Scores for a pruner's layers."""

    name: str = ""
    #: reads `.grad` in `on_before_optimizer_step`
    needs_grad: bool = False
    #: the score depends on every step's gradient, not only the latest one
    accumulates: bool = False

    def __init__(self) -> None:
        self.scores: dict[str, torch.Tensor] = {}

    def ready(self, names: list[str]) -> bool:
        """Whether every layer has a score to rank (gradient criteria need one backward)."""
        return True

    def score(self, name: str, weight: torch.Tensor) -> torch.Tensor | None:
        """The score tensor of one layer at a pruning step (weight-shaped), or None when
        the layer has none (it never received a gradient)."""
        raise NotImplementedError

    def update(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        """`on_before_optimizer_step`: read the gradients."""

    def forget(self) -> None:
        """Release the score buffers (after the last pruning step)."""
        self.scores.clear()


class MagnitudeCriterion(Criterion):
    name = "magnitude"

    def score(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().abs()


class _GradientBased(Criterion):
    needs_grad = True

    def ready(self, names: list[str]) -> bool:
        # a layer that never gets a gradient (unused in forward) scores zero
        return any(name in self.scores for name in names)

    def score(self, name: str, weight: torch.Tensor) -> torch.Tensor | None:
        return self.scores.get(name)

    def _buffer(self, store: dict[str, torch.Tensor], name: str, p: torch.Tensor) -> torch.Tensor:
        buf = store.get(name)
        if buf is None or buf.shape != p.shape or buf.device != p.device or buf.dtype != p.dtype:
            buf = torch.zeros_like(p, memory_format=torch.contiguous_format)
            store[name] = buf
        return buf


class GradientCriterion(_GradientBased):
    name = "gradient"

    def update(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is not None:
                    torch.abs(p.grad, out=self._buffer(self.scores, name, p))


class SnipCriterion(_GradientBased):
    name = "snip"

    def update(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is not None:
                    torch.mul(p, p.grad, out=self._buffer(self.scores, name, p)).abs_()


class SnipMomentumCriterion(_GradientBased):
    name = "snip_momentum"
    accumulates = True
    alpha = 0.9
    beta = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._scratch: dict[str, torch.Tensor] = {}

    def update(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is None:
                    continue
                s = self._buffer(self.scores, name, p)
                tmp = torch.mul(p, p.grad, out=self._buffer(self._scratch, name, p)).abs_()
                s.mul_(self.alpha).add_(tmp, alpha=self.beta)

    def forget(self) -> None:
        super().forget()
        self._scratch.clear()


CRITERIA: dict[str, type[Criterion]] = {
    "magnitude": MagnitudeCriterion,
    "gradient": GradientCriterion,
    "snip": SnipCriterion,
    "snip_momentum": SnipMomentumCriterion,
}


def get_criterion(name: str) -> Criterion:
    try:
        return CRITERIA[name]()
    except KeyError:
        raise ValueError(
            f"pruning criterion {name!r} is not supported by this runtime "
            f"(supported: {', '.join(CRITERIA)})"
        ) from None
