"""Pruning schedules (spec 3.2 / 3.4): pruning steps, one-shot, and the iterative
exp / cos / linear / cube curves against their formulas, including the spec's worked
example, measured on a real pruner."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import process_pruning_config
from neural_coder.runtime.pruning.pruners import BasicPruner
from neural_coder.runtime.pruning.schedules import Schedule, scheduled_sparsity


def formula(decay: str, s0: float, s_t: float, p: int, total: int) -> float:
    """Spec 3.4, written out independently of the implementation."""
    x = p / total
    if decay == "exp":
        return 1 - (1 - s0) * ((1 - s_t) / (1 - s0)) ** x
    if decay == "cos":
        return (s_t - s0) * (1 - math.cos(x * math.pi / 2)) + s0
    if decay == "linear":
        return (s_t - s0) * x + s0
    return (s_t - s0) * x**3 + s0


def test_worked_example_steps_and_counts() -> None:
    schedule = Schedule(start=0, end=10, frequency=2, target=0.8)
    assert schedule.kind == "iterative"
    assert schedule.total_count == 5 and schedule.first_count == 0
    assert schedule.steps() == [0, 2, 4, 6, 8, 10]
    assert [s for s in range(13) if schedule.is_pruning_step(s)] == [0, 2, 4, 6, 8, 10]
    assert schedule.sparsity(0) == pytest.approx(0.0)  # step 0 gives s0
    assert schedule.sparsity(5) == pytest.approx(0.8)  # step 10 gives the target


@pytest.mark.parametrize("decay", ["exp", "cos", "linear", "cube"])
@pytest.mark.parametrize("s0", [0.0, 0.2])
def test_curves_follow_the_formulas(decay: str, s0: float) -> None:
    schedule = Schedule(start=0, end=10, frequency=2, target=0.8, decay=decay)
    values = [schedule.sparsity(p, s0) for p in range(6)]
    expected = [formula(decay, s0, 0.8, p, 5) for p in range(6)]
    assert values == pytest.approx(expected)
    assert values[0] == pytest.approx(s0) and values[-1] == pytest.approx(0.8)
    assert values == sorted(values)


def test_curve_shapes_differ_as_expected() -> None:
    mid = {d: scheduled_sparsity(d, 0.8, 0.98, 2, 4) for d in ("exp", "cos", "linear", "cube")}
    assert mid["linear"] == pytest.approx(0.4)
    assert mid["cube"] == pytest.approx(0.1)
    assert mid["cos"] == pytest.approx(0.8 * (1 - math.cos(math.pi / 4)))
    assert mid["exp"] == pytest.approx(1 - math.sqrt(0.2))
    assert mid["cube"] < mid["cos"] < mid["linear"] < mid["exp"]


def test_max_ratio_lowers_the_iterative_end_point() -> None:
    assert scheduled_sparsity("linear", 0.9, 0.6, 4, 4) == pytest.approx(0.6)
    assert scheduled_sparsity("exp", 0.9, 0.6, 2, 4) == pytest.approx(1 - math.sqrt(0.4))


@pytest.mark.parametrize(("start", "end", "freq"), [(5, 5, 1), (0, 0, 1), (3, 5, 10)])
def test_oneshot_goes_straight_to_the_target(start: int, end: int, freq: int) -> None:
    schedule = Schedule(start, end, freq, target=0.7, max_ratio=0.5)
    assert schedule.kind == "oneshot"
    assert schedule.steps() == [start]
    assert schedule.sparsity(schedule.first_count) == 0.7


def test_uneven_window_ends_at_the_last_multiple_of_the_frequency() -> None:
    schedule = Schedule(start=0, end=9, frequency=2, target=0.5, decay="linear")
    assert schedule.total_count == 4 and schedule.last_step == 8
    assert schedule.sparsity(4) == pytest.approx(0.5)


def test_invalid_schedules_raise() -> None:
    with pytest.raises(ValueError):
        Schedule(5, 4, 1, 0.5)
    with pytest.raises(ValueError):
        Schedule(0, 4, 0, 0.5)
    with pytest.raises(ValueError):
        scheduled_sparsity("step", 0.5, 0.9, 1, 2)


@pytest.mark.parametrize("decay", ["exp", "cos", "linear", "cube"])
def test_pruner_follows_the_worked_example(decay: str) -> None:
    """start=0, end=10, freq=2 on a 1x1 magnitude pruner: the reached sparsity after each
    optimizer step follows the curve, within one weight."""
    torch.manual_seed(0)
    info = process_pruning_config(
        {
            "pruning_type": "magnitude",
            "pattern": "1x1",
            "target_sparsity": 0.8,
            "start_step": 0,
            "end_step": 10,
            "pruning_frequency": 2,
            "sparsity_decay_type": decay,
        }
    )[0]
    p = nn.Parameter(torch.randn(20, 25))
    pruner = BasicPruner(info, {"w": p})
    reached = []
    for step in range(13):
        pruner.on_step_begin(step)
        reached.append(int((p.detach() == 0).sum()) / p.numel())
        pruner.apply_masks()
    expected = [formula(decay, 0.0, 0.8, min(step // 2, 5), 5) for step in range(13)]
    for got, want in zip(reached, expected):
        assert want - 1 / 500 <= got <= want + 1e-9
    assert [h[0] for h in pruner.history] == [0, 2, 4, 6, 8, 10]
    assert pruner.finished
