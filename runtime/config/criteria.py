"""`AccuracyCriterion` and `TuningCriterion` (spec 2.2 / 2.3)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from .validation import (
    Validator,
    _choices,
    _Config,
    _fail,
    _is_number,
    boolean,
    integer,
    mapping,
    number,
    one_of,
)


# -- criteria ------------------------------------------------------------------------
class AccuracyCriterion(_Config):
    """How much accuracy a tuned model may lose (spec 2.2).

    Unlike INC, `tolerable_loss` accepts an int (`0` means 0.0); it must be >= 0.
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "higher_is_better": boolean(),
        "criterion": one_of("relative", "absolute"),
        "tolerable_loss": number(0.0),
    }

    def __init__(
        self,
        higher_is_better: bool = True,
        criterion: str = "relative",
        tolerable_loss: float = 0.01,
    ) -> None:
        self.higher_is_better = higher_is_better
        self.criterion = criterion
        self.tolerable_loss = tolerable_loss

    @property
    def relative(self) -> float | None:
        return self.tolerable_loss if self.criterion == "relative" else None

    @relative.setter
    def relative(self, value: float) -> None:
        self.criterion = "relative"
        self.tolerable_loss = value

    @property
    def absolute(self) -> float | None:
        return self.tolerable_loss if self.criterion == "absolute" else None

    @absolute.setter
    def absolute(self, value: float) -> None:
        self.criterion = "absolute"
        self.tolerable_loss = value

    def keys(self) -> tuple[str, ...]:
        return ("higher_is_better", "criterion", "tolerable_loss")

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def target(self, baseline: float) -> float:
        """The accuracy a candidate must reach, given the fp32 `baseline` (spec 2.2)."""
        tol = self.tolerable_loss
        if self.criterion == "relative":
            return baseline * (1 - tol) if self.higher_is_better else baseline * (1 + tol)
        return baseline - tol if self.higher_is_better else baseline + tol

    def is_met(self, accuracy: float, baseline: float) -> bool:
        """True when `accuracy` meets the goal relative to `baseline`.

        INC accepts `acc < target` when lower is better, so an exactly-on-target
        candidate is rejected there; here both directions accept the target itself.
        """
        target = self.target(baseline)
        return accuracy >= target if self.higher_is_better else accuracy <= target


_STRATEGIES = (
    "basic",
    "mse",
    "bayesian",
    "random",
    "exhaustive",
    "sigopt",
    "tpe",
    "mse_v2",
    "hawq_v2",
    # also accepted by INC's strategy registry and set by quant_level
    "auto",
    "conservative",
)
_OBJECTIVES = ("performance", "accuracy", "modelsize", "footprint")


def _objective(owner: str, param: str, value: Any) -> Any:
    if isinstance(value, str):
        if value not in _OBJECTIVES:
            raise _fail(owner, param, value, _choices(_OBJECTIVES) + " or a dict")
        return value
    if isinstance(value, Mapping):
        objs = value.get("objective")
        if isinstance(objs, str):
            objs = [objs]
        if (
            not isinstance(objs, (list, tuple))
            or not objs
            or any(o not in _OBJECTIVES for o in objs)
        ):
            raise _fail(
                owner, param, value, f"a dict whose 'objective' is a list from {list(_OBJECTIVES)}"
            )
        weight = value.get("weight")
        if weight is not None and (
            not isinstance(weight, (list, tuple))
            or len(weight) != len(objs)
            or not all(_is_number(w) for w in weight)
        ):
            raise _fail(
                owner, param, value, "a dict whose 'weight' is a list of numbers, one per objective"
            )
        hib = value.get("higher_is_better")
        if hib is not None and (
            not isinstance(hib, (list, tuple))
            or len(hib) != len(objs)
            or not all(isinstance(h, bool) for h in hib)
        ):
            raise _fail(
                owner,
                param,
                value,
                "a dict whose 'higher_is_better' is a list of bools, one per objective",
            )
        unknown = set(value) - {"objective", "weight", "higher_is_better"}
        if unknown:
            raise _fail(
                owner, param, value, "a dict with keys 'objective', 'weight', 'higher_is_better'"
            )
        return copy.deepcopy(dict(value))
    raise _fail(owner, param, value, _choices(_OBJECTIVES) + " or a dict")


class TuningCriterion(_Config):
    """How the tuner searches (spec 2.3). `timeout=0` stops at the first good trial."""

    _rules: ClassVar[dict[str, Validator]] = {
        "strategy": one_of(*_STRATEGIES),
        "strategy_kwargs": mapping(allow_none=True),
        "timeout": integer(0),
        "max_trials": integer(1),
        "objective": _objective,
    }

    def __init__(
        self,
        strategy: str = "basic",
        strategy_kwargs: dict[str, Any] | None = None,
        timeout: int = 0,
        max_trials: int = 100,
        objective: str | dict[str, Any] = "performance",
    ) -> None:
        self.strategy = strategy
        self.strategy_kwargs = strategy_kwargs
        self.timeout = timeout
        self.max_trials = max_trials
        self.objective = objective
