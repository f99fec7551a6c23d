"""Pruning: masks per pattern, N:M validity, schedules, scopes, and composability."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.pruning import PruningCompressor, scheduled_sparsity
from neural_coder.runtime.training import prepare_compression


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )


def train(model: nn.Module, cm, steps: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    cm.callbacks.on_train_begin()
    model = cm.model
    for step in range(steps):
        x, y = torch.randn(8, 16), torch.randint(0, 4, (8,))
        cm.callbacks.on_step_begin(step)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
    cm.callbacks.on_train_end()


def zeros(t: torch.Tensor) -> float:
    return float((t == 0).float().mean())


@pytest.mark.parametrize("pruning_type", ["magnitude", "snip_momentum", "snip", "gradient"])
@pytest.mark.parametrize("pattern", ["4x1", "1x1", "2x2", "channelx1"])
def test_target_reached_at_end_step_and_kept_after(pruning_type, pattern):
    model = mlp()
    start = 0 if pruning_type == "magnitude" else 1
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern=pattern,
        pruning_type=pruning_type,
        start_step=start,
        end_step=10,
    )
    cm = prepare_compression(model, conf)
    train(model, cm, 20)  # ten more optimizer steps after the last pruning step
    summary = cm.callbacks.compressors[0].summary()
    pruned = [model[0].weight, model[2].weight]
    overall = sum(int((w == 0).sum()) for w in pruned) / sum(w.numel() for w in pruned)
    assert overall == pytest.approx(0.5, abs=1 / 32)
    assert zeros(model[4].weight) == 0.0  # the classifier head is excluded
    assert (
        summary["sparsity"] == pytest.approx(overall) and summary["pruning_target_reached"] is True
    )


def test_block_pattern_zeroes_whole_blocks():
    model = mlp()
    cm = prepare_compression(
        model,
        WeightPruningConfig(
            target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", end_step=0
        ),
    )
    train(model, cm, 2)
    blocks = (model[2].weight == 0).reshape(8, 4, 32)
    assert bool(
        (blocks.all(dim=1) | ~blocks.any(dim=1)).all()
    )  # each 4x1 block is all zero or all kept


def test_n_in_m_prunes_exactly_n_in_each_selected_group():
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="2:4", pruning_type="magnitude", end_step=0
    )
    cm = prepare_compression(model, conf)
    train(model, cm, 2)
    for weight in (model[0].weight, model[2].weight):
        per_group = (weight == 0).reshape(weight.shape[0], -1, 4).sum(-1)
        assert set(per_group.unique().tolist()) <= {0, 2}
    overall = zeros(torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]))
    assert overall == pytest.approx(0.5, abs=0.01)


def test_local_scope_gives_every_layer_the_target():
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.4,
        pattern="1x1",
        pruning_type="magnitude",
        pruning_scope="local",
        end_step=0,
    )
    train(model, prepare_compression(model, conf), 1)
    assert zeros(model[0].weight) == pytest.approx(0.4, abs=0.01)
    assert zeros(model[2].weight) == pytest.approx(0.4, abs=0.01)


def test_global_scope_caps_each_layer_at_max_ratio():
    model = mlp()
    with torch.no_grad():
        model[0].weight.mul_(0.001)  # global magnitude would take this layer almost entirely
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1x1",
        pruning_type="magnitude",
        end_step=0,
        max_sparsity_ratio_per_op=0.6,
    )
    train(model, prepare_compression(model, conf), 1)
    assert zeros(model[0].weight) == pytest.approx(0.6, abs=0.01)
    overall = zeros(torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]))
    assert overall == pytest.approx(0.5, abs=0.01)


def test_excluded_op_names_and_op_names():
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1x1",
        pruning_type="magnitude",
        end_step=0,
        excluded_op_names=["^0$"],
    )
    train(model, prepare_compression(model, conf), 1)
    assert zeros(model[0].weight) == 0.0 and zeros(model[2].weight) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("decay", "formula"),
    [
        ("exp", lambda r: 1 - (1 - 0.8) ** r),
        ("cos", lambda r: 0.8 * (1 - math.cos(r * math.pi / 2))),
        ("linear", lambda r: 0.8 * r),
        ("cube", lambda r: 0.8 * r**3),
    ],
)
def test_schedules_follow_the_spec_formulas(decay, formula):
    for done in range(6):
        assert scheduled_sparsity(decay, 0.8, 0.98, done, 5) == pytest.approx(
            min(0.8, formula(done / 5))
        )


def test_worked_example_prunes_on_the_frequency_and_reaches_target_at_end():
    """start 0, end 10, frequency 2: pruning at 0, 2, ..., 10; step 10 gives the target."""
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="1x1", pruning_type="magnitude", start_step=0, end_step=10,
        pruning_frequency=2, sparsity_decay_type="linear",
    )  # fmt: skip
    cm = prepare_compression(model, conf)
    seen = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    cm.callbacks.on_train_begin()
    for step in range(12):
        cm.callbacks.on_step_begin(step)
        model(torch.randn(4, 16)).sum().backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        seen.append(
            round(zeros(torch.cat([model[0].weight.flatten(), model[2].weight.flatten()])), 2)
        )
    assert seen[0] == 0.0 and seen[1] == 0.0 and seen[2] == pytest.approx(0.1, abs=0.01)
    assert seen[10] == pytest.approx(0.5, abs=0.01) and seen[11] == seen[10]


def test_masks_follow_a_module_replaced_by_name_with_the_same_parameter():
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1x1",
        pruning_type="magnitude",
        end_step=0,
        pruning_scope="local",
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_begin(0)
    replacement = nn.Linear(32, 32)
    replacement.weight, replacement.bias = model[2].weight, model[2].bias
    model[2] = replacement
    cm.model.model = model  # notifies the compressor, as QAT preparation does
    with torch.no_grad():
        replacement.weight.add_(1.0)  # an optimizer update revives pruned weights
    cm.callbacks.on_after_optimizer_step()
    assert zeros(replacement.weight) == pytest.approx(0.5, abs=0.01)


def test_summary_reports_an_end_step_that_was_never_reached():
    model = mlp()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="1x1", pruning_type="magnitude", end_step=500
    )
    cm = prepare_compression(model, conf)
    train(model, cm, 5)
    compressor = cm.callbacks.compressors[0]
    assert isinstance(compressor, PruningCompressor)
    summary = compressor.summary()
    assert summary["pruning_target_reached"] is False
    assert (
        "end_step 500 was never reached: the run had 5 optimizer steps" in summary["pruning_note"]
    )
