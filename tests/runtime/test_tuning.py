"""The tuning loop on fakes: a 'model' is the set of ops kept in fp32, and the fake
evaluation's accuracy depends on which ops are converted."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from neural_coder.runtime.config import AccuracyCriterion
from neural_coder.runtime.tuning import Goal, Op, Progress, TuneConfig, tune

OPS = [Op(name, "Linear") for name in "abcdef"]
#: accuracy lost when the op is converted; 'b' and 'd' are the sensitive ones
PENALTY = {"a": 0.001, "b": 0.05, "c": 0.002, "d": 0.03, "e": 0.001, "f": 0.0}


class Fake:
    """build() records the configs it was asked for; the 'model' is its fallback set."""

    def __init__(self, penalty: dict[str, float] = PENALTY, fail: frozenset[str] = frozenset()):
        self.penalty = penalty
        self.fail = fail
        self.built: list[TuneConfig] = []

    def build(self, config: TuneConfig) -> frozenset[str]:
        self.built.append(config)
        if config.fallback & self.fail or (not config.fallback and self.fail):
            raise RuntimeError("this config does not quantize\nsecond line")
        return config.fallback

    def evaluate(self, fallback: frozenset[str]) -> float:
        return 1.0 - sum(p for op, p in self.penalty.items() if op not in fallback)


def run(fake: Fake, **kw):
    kw.setdefault("criterion", AccuracyCriterion(tolerable_loss=0.01))
    kw.setdefault("ops", OPS)
    kw.setdefault("baseline", 1.0)
    return tune(build=fake.build, evaluate=fake.evaluate, progress=False, **kw)


def test_finds_the_sensitive_ops_with_one_by_one_then_accumulated_fallback():
    fake = Fake()
    result = run(fake)
    assert result.met
    assert result.best.fp32_ops == ["b", "d"]
    assert result.best.accuracy == pytest.approx(0.996)
    assert result.best_model == frozenset({"b", "d"})
    # trial 1 all converted, one by one from the last op, then {b, d}: 8 trials
    assert [sorted(c.fallback) for c in fake.built] == [
        [],
        ["f"],
        ["e"],
        ["d"],
        ["c"],
        ["b"],
        ["a"],
        ["b", "d"],
    ]
    assert [t.stage for t in result.trials] == (
        ["all ops converted"] + ["fallback one by one"] * 6 + ["fallback accumulated"]
    )
    assert [t.met for t in result.trials] == [False] * 7 + [True]
    assert "early stop" in result.stop_reason


def test_accumulated_order_follows_single_fallback_impact():
    # three ops must stay fp32: b (worst), then d, then c
    penalty = {"a": 0.0, "b": 0.05, "c": 0.02, "d": 0.03, "e": 0.0, "f": 0.001}
    fake = Fake(penalty)
    result = run(fake, criterion=AccuracyCriterion(tolerable_loss=0.005))
    assert result.best.fp32_ops == ["b", "c", "d"]
    accumulated = [sorted(c.fallback) for c in fake.built[7:]]
    assert accumulated == [["b", "d"], ["b", "c", "d"]]


def test_stops_at_max_trials_and_explains_why():
    fake = Fake()
    result = run(fake, max_trials=5)
    assert not result.met and result.best_model is None
    assert len(result.trials) == 5 and len(fake.built) == 5
    assert "max_trials (5) reached" in result.stop_reason
    why = result.explain()
    assert "no configuration met the accuracy goal" in why
    # best seen: 'd' kept fp32 (trial 4) -> 1 - 0.054
    assert "best accuracy seen 0.9460 (trial 4" in why
    assert "target >= 0.9900" in why
    assert "5 trial(s) used (max_trials=5" in why


def test_first_trial_meeting_the_goal_ends_the_search_with_timeout_zero():
    fake = Fake({"a": 0.001})
    result = run(fake)
    assert len(fake.built) == 1 and result.best.index == 1 and result.best.fp32_ops == []


def test_with_a_timeout_the_search_goes_on_and_keeps_the_best():
    # keeping d (met first, one by one runs from the last op) or b in fp32 both meet
    # 0.965; keeping b leaves the better accuracy
    penalty = {"a": 0.0, "b": 0.03, "c": 0.0, "d": 0.02, "e": 0.0, "f": 0.0}
    fake = Fake(penalty)
    result = run(fake, criterion=AccuracyCriterion(tolerable_loss=0.035), timeout=3600)
    assert [t.index for t in result.trials if t.met] == [4, 6]
    assert result.best.fp32_ops == ["b"] and result.best.accuracy == pytest.approx(0.98)
    # the accumulated stage, which can only keep more ops in fp32, never ran
    assert len(fake.built) == 7
    assert result.stop_reason == "no remaining config can beat the best one"


def test_timeout_is_checked_between_trials():
    now = [0.0]

    def clock() -> float:
        return now[0]

    fake = Fake()

    def slow_build(config: TuneConfig):
        now[0] += 10.0
        return fake.build(config)

    result = tune(
        build=slow_build,
        evaluate=fake.evaluate,
        baseline=1.0,
        criterion=AccuracyCriterion(tolerable_loss=0.01),
        ops=OPS,
        timeout=25,
        clock=clock,
        progress=False,
    )
    assert len(result.trials) == 3
    assert result.stop_reason == "timeout (25s) reached"


def test_lower_is_better_with_an_absolute_criterion():
    # a loss: baseline 0.5, converting 'c' adds 0.3, the others 0.01 each
    added = {"a": 0.01, "b": 0.01, "c": 0.3}

    def evaluate(fallback: frozenset[str]) -> float:
        return 0.5 + sum(v for op, v in added.items() if op not in fallback)

    result = tune(
        build=lambda config: config.fallback,
        evaluate=evaluate,
        baseline=0.5,
        criterion=AccuracyCriterion(
            higher_is_better=False, criterion="absolute", tolerable_loss=0.05
        ),
        ops=[Op("a"), Op("b"), Op("c")],
        progress=False,
    )
    assert result.best.fp32_ops == ["c"]
    assert result.best.accuracy == pytest.approx(0.52)


def test_a_failing_config_is_a_failed_trial_and_the_loop_goes_on(caplog):
    # every config that converts 'f' fails to build; keeping 'f' in fp32 works
    fake = Fake({"a": 0.001}, fail=frozenset())

    def build(config: TuneConfig):
        if "f" not in config.fallback:
            raise RuntimeError("cannot convert f\ntraceback noise")
        return fake.build(config)

    with caplog.at_level(logging.INFO, logger="neural_coder.runtime.tuning"):
        result = tune(
            build=build,
            evaluate=fake.evaluate,
            baseline=1.0,
            criterion=AccuracyCriterion(tolerable_loss=0.01),
            ops=OPS,
            progress=False,
        )
    assert result.trials[0].error == "RuntimeError: cannot convert f"
    assert result.trials[0].accuracy is None and not result.trials[0].met
    assert result.best.fp32_ops == ["f"] and result.best.index == 2
    assert "failed: RuntimeError: cannot convert f" in caplog.text


def test_one_log_line_per_trial_with_accuracy_ops_and_time(caplog):
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime.tuning"):
        run(Fake())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    assert len(lines) == 8
    assert lines[0].startswith("trial 1/100 [all ops converted] accuracy 0.9160")
    assert "not met; 0 op(s) in fp32;" in lines[0]
    assert "1 op(s) in fp32 [f]" in lines[1]
    assert lines[-1].startswith("trial 8/100 [fallback accumulated] accuracy 0.9960")
    assert "met; 2 op(s) in fp32 [b, d]" in lines[-1]
    assert lines[-1].endswith("s")


def test_first_stage_options_are_tried_in_order_and_fallback_starts_from_the_best():
    calls: list[TuneConfig] = []

    def build(config: TuneConfig):
        calls.append(config)
        return config

    def evaluate(config: TuneConfig) -> float:
        # 'dynamic' is better than 'static' but neither meets the goal unless 'b' stays fp32
        base = 0.95 if config.get("approach") == "dynamic" else 0.9
        return base + (0.05 if "b" in config.fallback else 0.0)

    first = [TuneConfig.make(approach="static"), TuneConfig.make(approach="dynamic")]
    result = tune(
        build=build,
        evaluate=evaluate,
        baseline=1.0,
        criterion=AccuracyCriterion(tolerable_loss=0.01),
        first=first + [first[0]],  # a repeated config costs no trial
        ops=[Op("a"), Op("b")],
        progress=False,
    )
    assert [c.get("approach") for c in calls] == ["static", "dynamic", "dynamic"]
    assert result.best.config == TuneConfig.make(["b"], approach="dynamic")
    assert len(result.trials) == 3


def test_ops_can_come_from_the_first_model():
    seen: list[object] = []

    def ops(model, config):
        seen.append(model)
        return [Op("x"), Op("y")] if model is not None else []

    result = tune(
        build=lambda config: f"model{sorted(config.fallback)}",
        evaluate=lambda model: 1.0 if "'y'" in model else 0.5,
        baseline=1.0,
        criterion=AccuracyCriterion(),
        ops=ops,
        progress=False,
    )
    assert seen == ["model[]"]
    assert result.best.fp32_ops == ["y"]


def test_conservative_converts_op_types_then_single_ops():
    ops = [Op("conv1", "Conv2d"), Op("conv2", "Conv2d"), Op("fc1", "Linear"), Op("fc2", "Linear")]
    penalty = {"conv1": 0.0, "conv2": 0.0, "fc1": 0.05, "fc2": 0.001}
    fake = Fake(penalty)
    result = tune(
        build=fake.build,
        evaluate=fake.evaluate,
        baseline=1.0,
        criterion=AccuracyCriterion(tolerable_loss=0.01),
        ops=ops,
        strategy="conservative",
        progress=False,
    )
    built = [sorted(c.fallback) for c in fake.built]
    assert built == [
        ["fc1", "fc2"],  # all convs converted: met, kept
        [],  # all linears too: not met
        ["fc2"],  # fc1 alone: not met
        ["fc1"],  # fc2 alone: met, kept
    ]
    assert result.best.fp32_ops == ["fc1"]
    assert result.stop_reason == "all ops considered"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="strategy"):
        run(Fake(), strategy="bayesian")
    with pytest.raises(ValueError, match="max_trials"):
        run(Fake(), max_trials=0)
    with pytest.raises(ValueError, match="first-stage"):
        run(Fake(), first=[])


@pytest.mark.parametrize(
    ("criterion", "baseline", "target", "met", "not_met"),
    [
        (AccuracyCriterion(tolerable_loss=0.1), 0.8, 0.72, 0.72, 0.7199),
        (AccuracyCriterion(criterion="absolute", tolerable_loss=0.1), 0.8, 0.7, 0.7, 0.69),
        (AccuracyCriterion(higher_is_better=False, tolerable_loss=0.1), 2.0, 2.2, 2.2, 2.21),
        (
            AccuracyCriterion(higher_is_better=False, criterion="absolute", tolerable_loss=0.5),
            2.0,
            2.5,
            2.49,
            2.51,
        ),
    ],
)
def test_goal(criterion, baseline, target, met, not_met):
    goal = Goal.from_criterion(criterion, baseline)
    assert goal.target == pytest.approx(target)
    assert goal.met(met) and not goal.met(not_met) and not goal.met(None)


def test_goal_reads_inc_style_criteria_by_attribute():
    inc_like = SimpleNamespace(higher_is_better=True, criterion="absolute", tolerable_loss=0.02)
    assert Goal.from_criterion(inc_like, 0.5).target == pytest.approx(0.48)


def test_progress_bar_draws_only_when_enabled_and_after_the_delay():
    now = [0.0]
    stream = io.StringIO()
    bar = Progress(
        10, "tuning", unit="trial", delay=2.0, stream=stream, enabled=True, clock=lambda: now[0]
    )
    bar.update()
    assert stream.getvalue() == ""  # within the delay
    now[0] = 3.0
    bar.update(4, note="best 0.9")
    text = stream.getvalue()
    assert text.startswith("\rtuning:  50% |############------------| 5/10")
    assert "best 0.9" in text
    bar.close()
    assert stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    with Progress(3, "x", stream=quiet, delay=0.0) as off:  # a StringIO is not a terminal
        off.update(3)
    assert quiet.getvalue() == ""
