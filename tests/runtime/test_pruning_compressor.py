"""`PruningCompressor` through `prepare_compression` and the canonical loop (spec 1.7):
module selection, hooks and step counting, criteria, pruner variants, model
replacement, and the summary."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import ConfigValueError, WeightPruningConfig
from neural_coder.runtime.pruning import PruningCompressor, classifier_head, select_modules
from neural_coder.runtime.pruning.patterns import to_2d
from neural_coder.runtime.training import CompressionManager, prepare_compression
from tests.runtime.conftest import TinyMLP


class MLP(nn.Module):
    """8 -> 32 -> 32 -> 4 (fc1, fc2 prunable with 4x1 blocks; head excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


def zeros(p: torch.Tensor) -> float:
    return int((p.detach() == 0).sum()) / p.numel()


def pruned_sparsity(model: nn.Module, names: list[str]) -> float:
    weights = [dict(model.named_modules())[n].weight for n in names]
    return sum(int((w.detach() == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def run(
    cm: CompressionManager,
    model: nn.Module,
    steps: int,
    *,
    batch_in: tuple[int, ...] = (8,),
    after_step_begin: Callable[[int], None] | None = None,
    after_optimizer: Callable[[int], None] | None = None,
    call_after_optimizer_step: bool = True,
    lr: float = 0.05,
) -> nn.Module:
    """The canonical loop (spec 1.7) for `steps` optimizer steps, 4 batches per epoch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(8, *batch_in, generator=g), torch.randint(0, 4, (8,), generator=g))
        for _ in range(4)
    ]
    cm.callbacks.on_train_begin()
    wrapped = cm.model
    step = 0
    epoch = 0
    while step < steps:
        cm.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(data):
            if step >= steps:
                break
            cm.callbacks.on_step_begin(i)
            if after_step_begin is not None:
                after_step_begin(step)
            out = wrapped(x)
            loss = criterion(out, y)
            loss = cm.callbacks.on_after_compute_loss(x, out, loss)
            optimizer.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            if call_after_optimizer_step:
                cm.callbacks.on_after_optimizer_step()
            if after_optimizer is not None:
                after_optimizer(step)
            cm.callbacks.on_step_end()
            step += 1
        cm.callbacks.on_epoch_end()
        epoch += 1
    cm.callbacks.on_train_end()
    return wrapped


def compressor(cm: CompressionManager) -> PruningCompressor:
    c = cm.compressors[0]
    assert isinstance(c, PruningCompressor)
    return c


# -- the canonical loop ------------------------------------------------------------------------
@pytest.mark.parametrize("ptype", ["magnitude", "snip_momentum", "gradient", "snip"])
def test_criteria_reach_the_target_at_end_step_and_stay_there(ptype: str) -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type=ptype, start_step=2, end_step=10
    )
    cm = prepare_compression(model, conf)
    after_begin: list[float] = []
    after_opt: list[float] = []
    run(
        cm,
        model,
        16,
        after_step_begin=lambda s: after_begin.append(pruned_sparsity(model, ["fc1", "fc2"])),
        after_optimizer=lambda s: after_opt.append(pruned_sparsity(model, ["fc1", "fc2"])),
    )
    block = 4 / (32 * 8 + 32 * 32)  # one 4x1 block of the pruned weights
    assert after_begin[:3] == [0.0, 0.0, 0.0]  # nothing before start_step; s0 at start_step
    assert 0.0 < after_begin[3] < after_begin[6] < 0.5 - block  # iterative, growing
    assert after_begin[10] == pytest.approx(0.5, abs=block)  # the target at end_step
    # stays there after later optimizer steps (momentum and weight decay would revive zeros)
    assert all(s == after_begin[10] for s in after_begin[10:] + after_opt[10:])
    assert zeros(model.head.weight) == 0.0
    summary = cm.summary
    assert summary is not None
    assert summary["target_sparsity"] == 0.5
    assert summary["sparsity"] == pytest.approx(0.5, abs=block)
    assert summary["pruning_target_reached"] is True
    assert summary["pruning_steps_seen"] == 16
    assert "pruning_note" not in summary
    assert set(summary["per_layer_sparsity"]) == {"fc1", "fc2"}


def test_magnitude_and_snip_momentum_choose_different_blocks() -> None:
    masks = {}
    for ptype in ("magnitude", "snip_momentum"):
        torch.manual_seed(0)
        model = MLP()
        conf = WeightPruningConfig(
            target_sparsity=0.5, pattern="4x1", pruning_type=ptype, start_step=1, end_step=6
        )
        cm = prepare_compression(model, conf)
        run(cm, model, 8)
        masks[ptype] = model.fc2.weight.detach() == 0
        assert compressor(cm).summary()["pruning_target_reached"]
    assert not torch.equal(masks["magnitude"], masks["snip_momentum"])


def test_snip_momentum_scores_accumulate_in_place_and_are_released_after_end() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum", start_step=3, end_step=5
    )
    cm = prepare_compression(model, conf)
    c = compressor(cm)
    crit = c.pruners[0].criterion
    assert crit is not None
    seen: dict[str, list[int]] = {"fc1": [], "fc2": []}
    masks_seen: list[list[int]] = []

    def record(step: int) -> None:
        for name in seen:
            if name in crit.scores:
                seen[name].append(crit.scores[name].data_ptr())
        if step >= 6:
            masks_seen.append([id(m) for m in c._apply_masks])

    run(cm, model, 12, after_optimizer=record)
    for ptrs in seen.values():
        assert len(ptrs) >= 4 and len(set(ptrs)) == 1  # one buffer, updated in place
    assert crit.scores == {}  # released after the last pruning step
    assert len({tuple(m) for m in masks_seen}) == 1  # no new masks once pruning is over
    assert c._grad_pruners == []


def test_snip_momentum_formula() -> None:
    from neural_coder.runtime.pruning.criteria import SnipMomentumCriterion

    p = nn.Parameter(torch.tensor([[1.0, -2.0]]))
    crit = SnipMomentumCriterion()
    p.grad = torch.tensor([[0.5, 0.5]])
    crit.update({"w": p})
    p.grad = torch.tensor([[-1.0, 0.0]])
    crit.update({"w": p})
    # S1 = |W*G1| = [0.5, 1.0]; S2 = 0.9 * S1 + |W*G2| = [0.45 + 1.0, 0.9]
    assert crit.scores["w"].flatten().tolist() == pytest.approx([1.45, 0.9])


def test_gradient_criterion_at_step_zero_is_postponed_to_the_first_backward(caplog) -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum")
    cm = prepare_compression(model, conf)  # start_step = end_step = 0: one-shot at step 0
    by_step: list[float] = []
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime.pruning"):
        run(cm, model, 4, after_step_begin=lambda s: by_step.append(zeros(model.fc2.weight)))
    assert "postponed" in caplog.text
    assert by_step[0] == 0.0 and by_step[1] > 0.3
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


def test_conv_layers_prune_with_the_2d_view() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum", start_step=1, end_step=4
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 6, batch_in=(3, 6, 6))
    c = compressor(cm)
    assert list(c.pruners[0].params) == ["conv1", "conv2"]
    for conv in (model.conv1, model.conv2):
        blocks = (to_2d(conv.weight.detach()) == 0).reshape(2, 4, -1).sum(dim=1)
        assert set(blocks.unique().tolist()) <= {0, 4}
    assert zeros(model.head.weight) == 0.0
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


# -- module selection ----------------------------------------------------------------------------
class Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.block = nn.Sequential(nn.Conv1d(8, 8, 1), nn.LayerNorm(8))
        self.fc = nn.Linear(8, 4)  # the head: its name is a prefix of fc1 / fc2


def _selected(model: nn.Module, **kw: Any) -> list[str]:
    cm = prepare_compression(model, WeightPruningConfig(pruning_type="magnitude", **kw))
    return list(compressor(cm).pruners[0].params)


def test_classifier_head_is_excluded_by_exact_name_and_logged(caplog) -> None:
    model = Named()
    assert classifier_head(model) == "fc"
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime.pruning"):
        names = _selected(model, pattern="1x1")
    # INC appends "fc" to the exclusion regexes, which also drops fc1 and fc2
    assert names == ["fc1", "fc2", "block.0"]
    assert "classifier head fc" in caplog.text


def test_op_names_excluded_op_names_and_op_types() -> None:
    model = Named()
    assert _selected(model, pattern="1x1", op_names=["fc"]) == ["fc1", "fc2"]
    assert _selected(model, pattern="1x1", excluded_op_names=[r"fc\d"]) == ["block.0"]
    assert _selected(model, pattern="1x1", pruning_op_types=["Conv"]) == ["block.0"]
    # LayerNorm has a weight but is not a Conv / Linear; `Norm` selects it, and its 1-D
    # weight is reported, not pruned
    cm = prepare_compression(
        model,
        WeightPruningConfig(pattern="1x1", pruning_type="magnitude", pruning_op_types=["Norm"]),
    )
    pruner = compressor(cm).pruners[0]
    assert list(pruner.params) == [] and "block.1" in pruner.invalid


def test_parameter_names_in_op_names_match_no_module() -> None:
    """Spec 9.3: op_names are module names; `fc1.weight` selects nothing."""
    assert select_modules({"op_names": [r"fc1\.weight"]}, Named()) == {}


def test_invalid_layers_are_reported_in_the_summary() -> None:
    model = TinyMLP()  # fc1: 16x8, fc2: 16x16 -> 2:4 fits, 3x1 fits neither
    cm = prepare_compression(
        model,
        WeightPruningConfig(pattern="3x1", pruning_type="magnitude", start_step=0, end_step=0),
    )
    run(cm, model, 2)
    assert cm.summary is not None
    assert set(cm.summary["pruning_skipped_layers"]) == {"fc1", "fc2"}
    assert cm.summary["pruning_target_reached"] is False
    assert "no layer fits the pattern 3x1" in cm.summary["pruning_note"]


def test_unsupported_pruning_types_are_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        prepare_compression(MLP(), WeightPruningConfig(pruning_type="snip_momentum_block"))
    with pytest.raises(ConfigValueError):
        WeightPruningConfig(pruning_type="random")


def test_several_pruners_from_local_configs() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        pruning_configs=[
            {"op_names": ["fc1"], "pattern": "1x1", "target_sparsity": 0.25},
            {"op_names": ["fc2"], "pattern": "2:4", "target_sparsity": 0.5},
        ],
        pruning_type="magnitude",
        start_step=0,
        end_step=3,
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 5)
    assert zeros(model.fc1.weight) == pytest.approx(0.25)
    groups = (model.fc2.weight.detach() == 0).reshape(-1, 4).sum(dim=1)
    assert groups.tolist() == [2] * groups.numel()
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


# -- hooks and step counting -----------------------------------------------------------------------
def test_progress_counts_optimizer_steps_only() -> None:
    """Spec 9.2: without on_after_optimizer_step the schedule never leaves step 0."""
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=1, end_step=4
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 8, call_after_optimizer_step=False)
    assert zeros(model.fc1.weight) == 0.0
    summary = cm.summary
    assert summary is not None
    assert summary["pruning_steps_seen"] == 0
    assert summary["pruning_target_reached"] is False
    assert "on_after_optimizer_step was never called" in summary["pruning_note"]


def test_on_step_begin_is_idempotent_within_a_step_and_ignores_batch_ids() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="1x1", pruning_type="magnitude", start_step=0, end_step=4
    )
    cm = prepare_compression(model, conf)
    c = compressor(cm)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_begin(7)
    cm.callbacks.on_step_begin(0)
    cm.callbacks.on_step_begin(0)
    assert [h[0] for h in c.pruners[0].history] == [0]
    cm.callbacks.on_after_optimizer_step()
    for _ in range(3):
        cm.callbacks.on_step_begin(123)
    assert [h[0] for h in c.pruners[0].history] == [0, 1]


def test_end_step_never_reached_is_explained() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=500
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 12)
    summary = cm.summary
    assert summary is not None
    assert summary["pruning_target_reached"] is False
    assert (
        summary["pruning_note"] == "end_step 500 was never reached: the run had 12 optimizer steps"
    )
    assert 0.0 < summary["sparsity"] < 0.5


def test_max_ratio_below_target_is_explained() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.8,
        pattern="1x1",
        pruning_type="magnitude",
        start_step=0,
        end_step=0,
        max_sparsity_ratio_per_op=0.6,
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 2)
    summary = cm.summary
    assert summary is not None
    assert summary["per_layer_sparsity"] == pytest.approx({"fc1": 0.6, "fc2": 0.6}, abs=1 / 256)
    assert summary["pruning_target_reached"] is False
    assert "max_sparsity_ratio_per_op=0.6" in summary["pruning_note"]


def test_inc_sparsity_ratios_are_logged_at_train_end(caplog) -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=0
    )
    cm = prepare_compression(model, conf)
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime.pruning"):
        run(cm, model, 2)
    report = compressor(cm).sparsity_report
    assert report is not None
    pruned = 0.5 * (32 * 8 + 32 * 32)
    linear = 32 * 8 + 32 * 32 + 32 * 4
    assert report["elementwise_over_matmul_gemm_conv"] == pytest.approx(pruned / linear)
    assert report["blockwise_over_matmul_gemm_conv"] == pytest.approx(pruned / linear)
    all_params = sum(p.numel() for p in model.parameters())
    assert report["elementwise_over_all"] == pytest.approx(pruned / all_params)
    for key in report:
        assert key in caplog.text


def test_masks_follow_a_dtype_change_of_the_model() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=0
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_begin(0)
    model.double()  # the Parameters stay, their data changes dtype
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        cm.callbacks.on_step_begin(0)
        loss = cm.model(torch.randn(4, 8, dtype=torch.float64)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
    assert model.fc1.weight.dtype == torch.float64
    assert zeros(model.fc1.weight) + zeros(model.fc2.weight) > 0.5


# -- pruner variants -------------------------------------------------------------------------------
def test_pattern_lock_keeps_existing_zeros_and_adds_none() -> None:
    torch.manual_seed(0)
    model = MLP()
    with torch.no_grad():
        model.fc2.weight[:8, :4] = 0.0  # two 4x1-aligned regions
        model.fc1.weight[4:8] = 0.0
    before = {n: (dict(model.named_modules())[n].weight == 0).clone() for n in ("fc1", "fc2")}
    cm = prepare_compression(
        model,
        WeightPruningConfig(pruning_type="pattern_lock", pattern="4x1", start_step=0, end_step=0),
    )
    run(cm, model, 6)
    for name, zero in before.items():
        assert torch.equal(dict(model.named_modules())[name].weight.detach() == 0, zero)
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


def test_lock_init_sparsity_starts_the_schedule_from_existing_zeros() -> None:
    torch.manual_seed(0)
    model = MLP()
    with torch.no_grad():
        model.fc2.weight[:, :8] = 0.0
    locked = model.fc2.weight.detach() == 0
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1x1",
        pruning_type="magnitude",
        start_step=0,
        end_step=4,
        lock_init_sparsity=True,
        sparsity_decay_type="linear",
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 6)
    pruner = compressor(cm).pruners[0]
    assert pruner.init_sparsity == pytest.approx(256 / (256 + 1024))
    assert bool((model.fc2.weight.detach()[locked] == 0).all())
    assert pruner.history[0][1] == pytest.approx(pruner.init_sparsity)  # s0 at step 0
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


def test_progressive_pruning_zeroes_new_blocks_in_slices() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="4x1",
        pruning_type="magnitude_progressive",
        start_step=0,
        end_step=16,
        pruning_frequency=8,
        sparsity_decay_type="linear",
    )
    cm = prepare_compression(model, conf)
    by_step: list[float] = []
    run(
        cm,
        model,
        20,
        after_step_begin=lambda s: by_step.append(pruned_sparsity(model, ["fc1", "fc2"])),
    )
    pruner = compressor(cm).pruners[0]
    assert pruner.kind == "progressive" and pruner.progressive
    assert (pruner.slices, pruner.interval) == (4, 2)
    # step 8 prunes to 25 % in four slices: 1/4 at step 8, 2/4 at 10, 3/4 at 12, all at 14
    total = 32 * 8 + 32 * 32
    slice_ = 0.25 / 4
    assert by_step[8] == pytest.approx(slice_, abs=4 / total)
    assert by_step[9] == by_step[8]
    assert by_step[10] == pytest.approx(2 * slice_, abs=4 / total)
    assert by_step[12] == pytest.approx(3 * slice_, abs=4 / total)
    assert by_step[14] == pytest.approx(0.25, abs=4 / total)
    # the last pruning step applies its full masks (INC would interpolate past end_step)
    assert by_step[16] == pytest.approx(0.5, abs=4 / total)
    assert by_step[19] == by_step[16]
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


def test_progressive_degrades_to_basic_on_short_windows() -> None:
    model = MLP()
    conf = WeightPruningConfig(
        pattern="4x1", pruning_type="snip_progressive", start_step=1, end_step=4
    )
    pruner = compressor(prepare_compression(model, conf)).pruners[0]
    assert pruner.kind == "progressive" and not pruner.progressive


def test_group_lasso_shrinks_blocks_by_their_norm() -> None:
    torch.manual_seed(0)
    norms = {}
    for coeff in (0.0, 0.05):
        torch.manual_seed(0)
        model = MLP()
        conf = WeightPruningConfig(
            target_sparsity=0.25,
            pattern="4x1",
            pruning_type="magnitude",
            start_step=0,
            end_step=6,
            reg_type="group_lasso",
            parameters={"reg_coeff": coeff},
        )
        cm = prepare_compression(model, conf)
        run(cm, model, 6, lr=0.0)  # only the regularizer moves the weights
        w = model.fc2.weight.detach()
        norms[coeff] = w.reshape(8, 4, 32).pow(2).sum(dim=1).sqrt()
        assert bool(torch.isfinite(w).all())
        assert compressor(cm).pruners[0].use_reg is (coeff > 0)
    kept = norms[0.0] > 0
    # each kept block lost reg_coeff of its norm per step, or went to zero
    shrunk = (norms[0.0] - 6 * 0.05).clamp_min(0.0)
    assert torch.allclose(norms[0.05][kept & (shrunk > 0)], shrunk[kept & (shrunk > 0)], atol=1e-5)


def test_resume_from_pruned_checkpoint_keeps_the_zeros_it_finds() -> None:
    torch.manual_seed(0)
    model = MLP()
    with torch.no_grad():
        model.fc1.weight[:4] = 0.0
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="4x1",
        pruning_type="magnitude",
        start_step=3,
        end_step=3,
        resume_from_pruned_checkpoint=True,
    )
    cm = prepare_compression(model, conf)
    by_step: list[float] = []
    run(cm, model, 3, after_optimizer=lambda s: by_step.append(zeros(model.fc1.weight[:4])))
    assert by_step == [1.0, 1.0, 1.0]  # re-masked before the first pruning step


# -- model replacement (composability with QAT) ----------------------------------------------------
class SharedLinear(nn.Module):
    """A new module object that holds the same weight Parameter (what QAT prepare builds)."""

    def __init__(self, old: nn.Linear) -> None:
        super().__init__()
        self.weight = old.weight
        self.bias = old.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


class Renamed(nn.Module):
    """A new top-level module where fc1 lives under another name."""

    def __init__(self, old: MLP) -> None:
        super().__init__()
        self.stem = nn.Sequential(SharedLinear(old.fc1))
        self.fc2 = SharedLinear(old.fc2)
        self.head = old.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.stem(x)))))


def test_layers_are_re_resolved_by_name_after_a_model_replacement() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum", start_step=1, end_step=8
    )
    cm = prepare_compression(model, conf)
    c = compressor(cm)
    fc1_weight = model.fc1.weight

    def replace(step: int) -> None:
        if step == 3:  # mid-window, as QAT's on_train_begin would
            new = MLP()
            new.fc1 = SharedLinear(model.fc1)
            new.fc2 = SharedLinear(model.fc2)
            new.head = model.head
            cm.model.model = new
            assert c.pruners[0].params["fc1"] is fc1_weight

    run(cm, model, 12, after_optimizer=replace)
    inner = cm.model.model
    assert isinstance(inner.fc1, SharedLinear) and inner is not model
    assert pruned_sparsity(inner, ["fc1", "fc2"]) == pytest.approx(0.5, abs=4 / 1280)
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True
    assert set(cm.summary["per_layer_sparsity"]) == {"fc1", "fc2"}


def test_a_vanished_name_falls_back_to_the_same_parameter() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum", start_step=1, end_step=8
    )
    cm = prepare_compression(model, conf)
    c = compressor(cm)

    def replace(step: int) -> None:
        if step == 3:
            cm.model.model = Renamed(model)

    run(cm, model, 12, after_optimizer=replace)
    pruner = c.pruners[0]
    assert set(pruner.params) == {"stem.0", "fc2"}
    assert pruner.detached == set()
    inner = cm.model.model
    assert pruned_sparsity(inner, ["stem.0", "fc2"]) == pytest.approx(0.5, abs=4 / 1280)
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True


def test_a_weight_that_left_the_model_is_detached_but_still_reported() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=0
    )
    cm = prepare_compression(model, conf)
    run(cm, model, 2)
    c = compressor(cm)
    replacement = MLP()  # new Parameters everywhere, at the same names and shapes
    replacement.fc1 = nn.Identity()  # type: ignore[assignment]
    cm.model.model = replacement
    pruner = c.pruners[0]
    assert "fc1" in pruner.detached
    assert pruner.params["fc2"] is replacement.fc2.weight  # same name, same shape: adopted
    summary = c.summary()  # measured at train end
    assert summary["sparsity"] == pytest.approx(0.5, abs=4 / 1280)
    cm.callbacks.on_after_optimizer_step()  # masking goes on for what is still there
    assert zeros(replacement.fc2.weight) == summary["per_layer_sparsity"]["fc2"] > 0


def test_pruning_with_real_qat_keeps_masking_the_prepared_model() -> None:
    pytest.importorskip("neural_coder.runtime.quant.qat")
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig

    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="snip_momentum", start_step=1, end_step=6
    )
    cm = prepare_compression(model, [conf, QuantizationAwareTrainingConfig()])
    c = compressor(cm)
    weights = dict(c.pruners[0].params)
    prepared: list[nn.Module] = []
    detached: list[set[str]] = []
    pruner = c.pruners[0]

    def record(step: int) -> None:
        if step == 0:
            prepared.append(cm.model.model)
        detached.append(set(pruner.detached))

    run(cm, model, 10, after_optimizer=record)
    assert prepared and prepared[0] is not model  # QAT replaced the inner module
    assert detached == [set()] * 10 and set(pruner.params) == {"fc1", "fc2"}
    assert all(pruner.params[n] is weights[n] for n in weights)  # the same Parameters
    # the int8 conversion (finalize, after on_train_end) leaves no float weight to mask
    assert pruner.detached == {"fc1", "fc2"}
    modules = dict(prepared[0].named_modules())
    assert pruned_sparsity(prepared[0], ["fc1", "fc2"]) == pytest.approx(0.5, abs=4 / 1280)
    assert modules["fc1"].weight is weights["fc1"]
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True
    assert cm.summary["quantized_modules"] > 0


class _RecurrentClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.out = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.embed(ids))[0][:, -1])


def test_a_model_with_nothing_to_prune_says_where_its_weights_are(caplog) -> None:
    model = _RecurrentClassifier()
    conf = WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=0)
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_train_end()
    summary = cm.summary
    assert summary is not None and summary["pruning_target_reached"] is False
    note = summary["pruning_note"]
    assert "the classifier head out is never pruned" in note
    assert "the other weights are in Embedding, LSTM modules, which are not pruned" in note
    assert note in caplog.text
