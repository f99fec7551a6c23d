"""The records of the tuning loop (`tuning.py`): an op, a config (the ops kept in fp32 plus
free options), a trial, the accuracy goal and the result."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

M = TypeVar("M")


# -- configs and trials -----------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """A tunable op: its qualified name and its type (module class name)."""

    name: str
    type: str = ""


@dataclass(frozen=True)
class TuneConfig:
    """One point of the search: the ops kept in fp32 and the other options."""

    fallback: frozenset[str] = frozenset()
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, fallback: Sequence[str] | frozenset[str] = (), **options: Any) -> TuneConfig:
        return cls(frozenset(fallback), tuple(sorted(options.items())))

    def get(self, key: str, default: Any = None) -> Any:
        for name, value in self.options:
            if name == key:
                return value
        return default

    def with_fallback(self, names: Sequence[str] | frozenset[str]) -> TuneConfig:
        return TuneConfig(frozenset(names), self.options)

    def describe_options(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options)


@dataclass
class Trial:
    """One quantize-and-evaluate attempt."""

    index: int
    stage: str
    config: TuneConfig
    accuracy: float | None
    met: bool
    seconds: float
    error: str | None = None

    @property
    def fp32_ops(self) -> list[str]:
        return sorted(self.config.fallback)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (the summary's `trials` entries)."""
        return {
            "trial": self.index,
            "stage": self.stage,
            "accuracy": self.accuracy,
            "met": self.met,
            "fp32_ops": self.fp32_ops,
            "options": dict(self.config.options),
            "seconds": round(self.seconds, 4),
            "error": self.error,
        }


class Goal:
    """An `AccuracyCriterion` applied to a baseline (spec 2.2).

    The target itself is accepted in both directions (INC rejects an exactly
    on-target result when lower is better), within float rounding: `0.8 * (1 - 0.1)`
    is 0.7200000000000001, and an accuracy of 0.72 meets it.
    """

    def __init__(
        self,
        baseline: float,
        higher_is_better: bool = True,
        criterion: str = "relative",
        tolerable_loss: float = 0.01,
    ) -> None:
        if criterion not in ("relative", "absolute"):
            raise ValueError(f"criterion must be 'relative' or 'absolute', got {criterion!r}")
        self.baseline = float(baseline)
        self.higher_is_better = bool(higher_is_better)
        self.criterion = criterion
        self.tolerable_loss = float(tolerable_loss)

    @classmethod
    def from_criterion(cls, criterion: Any, baseline: float) -> Goal:
        """From an `AccuracyCriterion` (ours or INC's: attributes only)."""
        return cls(
            baseline,
            higher_is_better=getattr(criterion, "higher_is_better", True),
            criterion=getattr(criterion, "criterion", "relative"),
            tolerable_loss=getattr(criterion, "tolerable_loss", 0.01),
        )

    @property
    def target(self) -> float:
        base, tol = self.baseline, self.tolerable_loss
        if self.criterion == "relative":
            return base * (1 - tol) if self.higher_is_better else base * (1 + tol)
        return base - tol if self.higher_is_better else base + tol

    def met(self, accuracy: float | None) -> bool:
        """The goal holds; a result on the target within float rounding (1e-9) counts."""
        if accuracy is None or math.isnan(accuracy):
            return False
        target = self.target
        slack = 1e-9 * max(1.0, abs(target))
        return accuracy >= target - slack if self.higher_is_better else accuracy <= target + slack

    def better(self, a: float | None, b: float | None) -> bool:
        """`a` is a strictly better accuracy than `b` (None and NaN are worst)."""
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.higher_is_better else a < b

    def describe(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        loss = (
            f"{self.tolerable_loss:.2%} relative"
            if self.criterion == "relative"
            else f"{self.tolerable_loss:g} absolute"
        )
        return f"target {sign} {self.target:.4f} (baseline {self.baseline:.4f}, {loss} loss)"


@dataclass
class TuningResult(Generic[M]):
    """What `tune` found."""

    goal: Goal
    strategy: str
    trials: list[Trial] = field(default_factory=list)
    best: Trial | None = None
    best_model: M | None = None
    stop_reason: str = ""
    max_trials: int = 0
    timeout: float = 0.0

    @property
    def met(self) -> bool:
        return self.best is not None

    @property
    def best_seen(self) -> Trial | None:
        """The trial with the best accuracy, met or not."""
        seen: Trial | None = None
        for trial in self.trials:
            if trial.accuracy is not None and (
                seen is None or self.goal.better(trial.accuracy, seen.accuracy)
            ):
                seen = trial
        return seen

    def explain(self) -> str:
        """One line: what was found, or why nothing was."""
        used = f"{len(self.trials)} trial(s) used (max_trials={self.max_trials}"
        used += f", timeout={self.timeout:g}s)" if self.timeout else ", timeout=0: early stop)"
        if self.best is not None:
            return (
                f"trial {self.best.index} meets the goal: accuracy {self.best.accuracy:.4f}, "
                f"{self.goal.describe()}, {len(self.best.config.fallback)} op(s) in fp32; "
                f"{used}; stopped: {self.stop_reason}"
            )
        seen = self.best_seen
        best = (
            f"best accuracy seen {seen.accuracy:.4f} (trial {seen.index}, "
            f"{len(seen.config.fallback)} op(s) in fp32)"
            if seen is not None
            else "no trial produced an accuracy"
        )
        return (
            f"no configuration met the accuracy goal: {best} vs {self.goal.describe()}; "
            f"{used}; stopped: {self.stop_reason}"
        )
