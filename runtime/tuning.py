"""The accuracy-aware tuning loop of `quantization.fit` and `mix_precision.fit`.

Independent of torch: a *config* is the set of ops kept in fp32 (`fallback`)
plus free options (approach, calibration size); `build(config)` turns it into a
candidate model and `evaluate(model)` scores it, so the loop runs as well on
fakes as on int8 models. It follows INC 2.x's strategies (spec 5):

* **trial 1** (`auto` and `basic`): every op converted, for each first-stage
  option in order (static before dynamic with `approach="auto"`, one trial per
  calibration sampling size).
* **one-by-one fallback**: from the best first-stage option, each trial keeps
  exactly one op in fp32, last op first, and records the accuracy.
* **accumulated fallback**: ops sorted by their one-by-one accuracy (best
  first) fall back cumulatively: 2 ops, 3 ops, ...
* **conservative** (`quant_level=0`): start with every op in fp32, convert the
  op types conv, then linear / matmul, then the rest, a whole type at a time,
  else op by op, keeping each step only while the goal holds.

Budget (spec 2.3 / 5): a trial is accepted when the accuracy goal holds
(`AccuracyCriterion`, relative or absolute, either direction). `timeout=0`
stops at the first accepted trial; `timeout > 0` keeps going until the time
limit, keeping the best. Both stop at `max_trials`. A config already tried is
not tried again and costs no trial.

Deliberate differences from INC, documented here:

* "best" among accepted trials is the one with the fewest ops in fp32, then the
  better accuracy (INC compares a measured performance objective; fewer fp32
  ops is what makes an int8 model faster and smaller, without timing every
  trial). With `timeout > 0` a config with more fp32 ops than the best so far
  cannot win and is skipped instead of run.
* The time limit is checked between trials; a trial that started runs to its end
  (INC interrupts it with a signal).
* INC's `auto` runs `conservative` between trial 1 and `basic`; here `auto` goes
  from trial 1 straight to the fallback stages, which reach the goal in fewer trials.
* A trial whose build or evaluation raises is logged and counted as a failed
  trial (its op keeps its place in the fallback order, last); the loop goes on.
  Ctrl-C stops the loop and keeps the best model so far (INC does the same).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Generic

from .progress import Progress
from .tuning_records import Goal, M, Op, Trial, TuneConfig, TuningResult

__all__ = [
    "Goal",
    "Op",
    "Progress",
    "Trial",
    "TuneConfig",
    "TuningResult",
    "tune",
]

log = logging.getLogger(__name__)


STRATEGIES = ("auto", "basic", "conservative")


# -- the loop -----------------------------------------------------------------------
class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: op types converted first by the conservative strategy (substring of the type name)
_CONSERVATIVE_ORDER = (("conv",), ("linear", "matmul", "bmm", "mm"))

OpsSource = Sequence[Op] | Callable[[M | None, TuneConfig], Sequence[Op]]


class _Tuner(Generic[M]):
    def __init__(
        self,
        build: Callable[[TuneConfig], M],
        evaluate: Callable[[M], float],
        goal: Goal,
        ops: OpsSource,
        strategy: str,
        max_trials: int,
        timeout: float,
        logger: logging.Logger,
        clock: Callable[[], float],
        progress: Progress | None,
    ) -> None:
        self.build = build
        self.evaluate = evaluate
        self.goal = goal
        self.ops_source = ops
        self.strategy = strategy
        self.max_trials = max_trials
        self.timeout = timeout
        self.log = logger
        self.clock = clock
        self.progress = progress
        self.start = clock()
        self.result: TuningResult[M] = TuningResult(
            goal=goal, strategy=strategy, max_trials=max_trials, timeout=timeout
        )
        self.seen: dict[TuneConfig, Trial] = {}
        self.ops_by_options: dict[tuple[tuple[str, Any], ...], list[Op]] = {}

    # -- budget --------------------------------------------------------------------
    def _check_budget(self) -> None:
        if len(self.result.trials) >= self.max_trials:
            raise _Stop(f"max_trials ({self.max_trials}) reached")
        if self.timeout > 0 and self.clock() - self.start >= self.timeout:
            raise _Stop(f"timeout ({self.timeout:g}s) reached")

    def _cannot_win(self, config: TuneConfig) -> bool:
        best = self.result.best
        return best is not None and len(config.fallback) > len(best.config.fallback)

    def _ops_for(self, model: M | None, config: TuneConfig) -> list[Op]:
        if callable(self.ops_source):
            return list(self.ops_source(model, config))
        return list(self.ops_source)

    # -- one trial -------------------------------------------------------------------
    def attempt(self, stage: str, config: TuneConfig) -> Trial | None:
        """Run `config` unless it was tried already or cannot beat the best."""
        if config in self.seen:
            return self.seen[config]
        if self._cannot_win(config):
            return None
        self._check_budget()
        index = len(self.result.trials) + 1
        began = self.clock()
        model: M | None = None
        accuracy: float | None = None
        error: str | None = None
        try:
            model = self.build(config)
            if config.options not in self.ops_by_options:
                self.ops_by_options[config.options] = self._ops_for(model, config)
            accuracy = float(self.evaluate(model))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a config that fails is a failed trial, not a failed run
            error = _first_line(exc)
            self.log.debug("trial %d failed", index, exc_info=True)
        met = error is None and self.goal.met(accuracy)
        trial = Trial(index, stage, config, accuracy, met, self.clock() - began, error)
        self.result.trials.append(trial)
        self.seen[config] = trial
        self._log_trial(trial)
        if met and self._is_new_best(trial):
            self.result.best = trial
            self.result.best_model = model
        if self.progress is not None:
            self.progress.update(1, note=f"best {self._best_text()}")
        if met and self.timeout == 0 and self.strategy != "conservative":
            raise _Stop("early stop at the first config that meets the goal (timeout=0)")
        return trial

    def _is_new_best(self, trial: Trial) -> bool:
        best = self.result.best
        if best is None:
            return True
        if len(trial.config.fallback) != len(best.config.fallback):
            return len(trial.config.fallback) < len(best.config.fallback)
        return self.goal.better(trial.accuracy, best.accuracy)

    def _best_text(self) -> str:
        seen = self.result.best_seen
        return "-" if seen is None or seen.accuracy is None else f"{seen.accuracy:.4f}"

    def _log_trial(self, trial: Trial) -> None:
        fp32 = trial.fp32_ops
        shown = ", ".join(fp32[:4]) + (f", ... (+{len(fp32) - 4})" if len(fp32) > 4 else "")
        ops = f"{len(fp32)} op(s) in fp32" + (f" [{shown}]" if fp32 else "")
        if trial.error is not None:
            outcome = f"failed: {trial.error}"
        else:
            sign = ">=" if self.goal.higher_is_better else "<="
            outcome = f"accuracy {trial.accuracy:.4f} (target {sign} {self.goal.target:.4f}) " + (
                "met" if trial.met else "not met"
            )
        options = trial.config.describe_options()
        self.log.info(
            "trial %d/%d [%s%s] %s; %s; %.2fs",
            trial.index,
            self.max_trials,
            trial.stage,
            f", {options}" if options else "",
            outcome,
            ops,
            trial.seconds,
        )

    # -- stages ----------------------------------------------------------------------
    def run(self, first: Sequence[TuneConfig]) -> None:
        if self.strategy == "conservative":
            self._conservative(first[0])
            return
        base = self._first_stage(first)
        ops = self.ops_by_options.get(base.options)
        if ops is None:
            ops = self._ops_for(None, base)
        if not ops:
            raise _Stop("no op left to keep in fp32")
        single = self._one_by_one(base, ops)
        self._accumulated(base, ops, single)
        raise _Stop("all fallback configs tried")

    def _first_stage(self, first: Sequence[TuneConfig]) -> TuneConfig:
        trials = [self.attempt("all ops converted", config) for config in first]
        if self.result.best is not None:
            return self.result.best.config.with_fallback(())
        # fallback starts from the best first-stage option (the first when none scored)
        base = first[0]
        best_accuracy: float | None = None
        for config, trial in zip(first, trials):
            if trial is not None and self.goal.better(trial.accuracy, best_accuracy):
                base, best_accuracy = config, trial.accuracy
        return base

    def _one_by_one(self, base: TuneConfig, ops: list[Op]) -> dict[str, float | None]:
        single: dict[str, float | None] = {}
        for op in reversed(ops):
            trial = self.attempt("fallback one by one", base.with_fallback({op.name}))
            single[op.name] = trial.accuracy if trial is not None else None
        return single

    def _accumulated(
        self, base: TuneConfig, ops: list[Op], single: Mapping[str, float | None]
    ) -> None:
        # stable sort: the best single-fallback accuracy first; unscored ops last,
        # in the one-by-one order (last op first)
        order = list(reversed(ops))
        scored = [op for op in order if single.get(op.name) is not None]
        unscored = [op for op in order if single.get(op.name) is None]
        scored.sort(key=lambda op: single[op.name], reverse=self.goal.higher_is_better)  # type: ignore[arg-type,return-value]
        ranked = [op.name for op in scored + unscored]
        for count in range(2, len(ranked) + 1):
            config = base.with_fallback(ranked[:count])
            if self._cannot_win(config):
                raise _Stop("no remaining config can beat the best one")
            self.attempt("fallback accumulated", config)

    def _conservative(self, base: TuneConfig) -> None:
        ops = self._ops_for(None, base)
        if not ops:
            raise _Stop("no op to convert")
        current = base.with_fallback([op.name for op in ops])
        self.log.info(
            "conservative: starting from %d op(s) in fp32, converting conv, then linear / "
            "matmul, then the rest",
            len(ops),
        )
        groups: list[list[Op]] = []
        taken: set[str] = set()
        for needles in _CONSERVATIVE_ORDER:
            group = [
                op
                for op in ops
                if op.name not in taken and any(n in op.type.lower() for n in needles)
            ]
            taken.update(op.name for op in group)
            groups.append(group)
        groups.append([op for op in ops if op.name not in taken])
        for group in groups:
            names = [op.name for op in group if op.name in current.fallback]
            if not names:
                continue
            candidate = current.with_fallback(current.fallback - set(names))
            trial = self.attempt("conservative: op type", candidate)
            if trial is not None and trial.met:
                current = candidate
                continue
            if len(names) == 1:
                continue
            for name in names:
                candidate = current.with_fallback(current.fallback - {name})
                trial = self.attempt("conservative: op", candidate)
                if trial is not None and trial.met:
                    current = candidate
        raise _Stop("all ops considered")


def criterion_for(criterion: Any, eval_func: Any) -> Any:
    """The accuracy criterion, turned the way the evaluation found out at run time: an
    `eval_func` that picks its metric from what the evaluation returns (see
    `trainer_eval_func`) sets `higher_is_better` once its first call has run."""
    direction = getattr(eval_func, "higher_is_better", None)
    if direction is None or direction == getattr(criterion, "higher_is_better", True):
        return criterion
    log.info(
        "the evaluation's metric %s is better when %s: tuning follows it",
        getattr(eval_func, "metric_key", "?"),
        "higher" if direction else "lower",
    )
    return SimpleNamespace(
        higher_is_better=direction,
        criterion=getattr(criterion, "criterion", "relative"),
        tolerable_loss=getattr(criterion, "tolerable_loss", 0.01),
    )


def tune(
    *,
    build: Callable[[TuneConfig], M],
    evaluate: Callable[[M], float],
    baseline: float,
    criterion: Any,
    first: Sequence[TuneConfig] | TuneConfig = TuneConfig(),  # noqa: B008 (frozen dataclass)
    ops: OpsSource = (),
    strategy: str = "basic",
    max_trials: int = 100,
    timeout: float = 0,
    logger: logging.Logger | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: bool | None = None,
) -> TuningResult[M]:
    """Search for the config whose model meets `criterion` against `baseline`.

    `build(config)` makes a candidate (with `config.fallback` kept in fp32),
    `evaluate(model)` scores it. `first` lists the first-stage configs (every op
    converted) in the order to try. `ops` is the tunable ops in execution order,
    or a function `(model, config) -> ops` called with each first-stage model
    (and with `None` when that model could not be built, or for `conservative`).
    `strategy` is `auto`, `basic` or `conservative` (see the module docstring).
    `progress`: None draws a bar on a terminal, False never.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if max_trials < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials}")
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    firsts = [first] if isinstance(first, TuneConfig) else list(first)
    if not firsts:
        raise ValueError("tune needs at least one first-stage config")
    logger = logger or log
    goal = Goal.from_criterion(criterion, baseline)
    bar = Progress(max_trials, "tuning", unit="trial", enabled=progress)
    tuner: _Tuner[M] = _Tuner(
        build, evaluate, goal, ops, strategy, max_trials, timeout, logger, clock, bar
    )
    logger.info(
        "tuning (%s strategy): %s; max_trials=%d, timeout=%s",
        strategy,
        goal.describe(),
        max_trials,
        f"{timeout:g}s" if timeout else "0 (stop at the first config that meets the goal)",
    )
    try:
        tuner.run(firsts)
    except _Stop as stop:
        tuner.result.stop_reason = stop.reason
    except KeyboardInterrupt:
        tuner.result.stop_reason = "interrupted (Ctrl-C); keeping the best model so far"
        logger.warning("tuning interrupted; keeping the best model so far")
    finally:
        bar.close()
    return tuner.result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
