"""Pruning patterns and mask selection (spec 3.6): shapes, exact ratios, N:M validity,
the Conv 2-D view, global vs local scope and the per-layer min/max caps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import process_pruning_config
from neural_coder.runtime.pruning.patterns import (
    PatternNInM,
    PatternNxM,
    from_2d,
    get_pattern,
    lowest_k,
    select_global,
    select_local,
    to_2d,
)
from neural_coder.runtime.pruning.pruners import BasicPruner


def _info(**overrides: object) -> dict:
    return process_pruning_config({"pruning_type": "magnitude", **overrides})[0]


def _prune_once(weights: dict[str, torch.Tensor], ratio: float, **overrides: object) -> BasicPruner:
    """A magnitude pruner over `weights` that has pruned to `ratio` (one-shot)."""
    info = _info(target_sparsity=ratio, start_step=0, end_step=0, **overrides)
    params = {name: nn.Parameter(w.clone()) for name, w in weights.items()}
    pruner = BasicPruner(info, params)
    assert pruner.on_step_begin(0)
    return pruner


def _zeros(p: torch.Tensor) -> float:
    return float((p.detach() == 0).float().mean())


# -- 2-D view --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 4), (8, 3, 3, 3), (4, 2, 5), (4, 2, 3, 3, 3)])
def test_2d_view_round_trip(shape: tuple[int, ...]) -> None:
    t = torch.arange(math.prod(shape)).reshape(shape)
    t2 = to_2d(t)
    assert t2.shape == (shape[0], math.prod(shape[1:]))
    assert torch.equal(from_2d(t2, shape), t)


def test_conv_2d_view_puts_input_channels_last() -> None:
    w = torch.zeros(2, 3, 2, 2)
    w[0, 1, 0, 0] = 1.0  # out 0, in 1, kh 0, kw 0 -> column (0*2+0)*3 + 1
    assert to_2d(w)[0].nonzero().flatten().tolist() == [1]
    w = torch.zeros(2, 3, 2, 2)
    w[1, 0, 1, 1] = 1.0  # out 1, in 0, kh 1, kw 1 -> column (1*2+1)*3 + 0 = 9
    assert to_2d(w)[1].nonzero().flatten().tolist() == [9]


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cls", "n", "m"),
    [
        ("4x1", PatternNxM, 4, 1),
        ("tile_pattern_4x1", PatternNxM, 4, 1),
        ("1x1", PatternNxM, 1, 1),
        ("channelx1", PatternNxM, "channel", 1),
        ("1xchannel", PatternNxM, 1, "channel"),
        ("2:4", PatternNInM, 2, 4),
        ("tile_pattern_1:4", PatternNInM, 1, 4),
    ],
)
def test_get_pattern(text: str, cls: type, n: object, m: object) -> None:
    pattern = get_pattern(text)
    assert isinstance(pattern, cls)
    assert (pattern.n, pattern.m) == (n, m)


def test_mha_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="mha"):
        get_pattern("mha")


# -- NxM -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", ["4x1", "1x4", "2x2", "1x1", "8x2"])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.9])
def test_nxm_masks_prune_whole_blocks_at_the_exact_ratio(pattern: str, ratio: float) -> None:
    torch.manual_seed(0)
    pruner = _prune_once(
        {"a": torch.randn(16, 32), "b": torch.randn(32, 16)}, ratio, pattern=pattern
    )
    n, m = (int(v) for v in pattern.split("x"))
    pruned_blocks = total_blocks = 0
    for name, p in pruner.params.items():
        mask = pruner.masks[name]
        assert mask.shape == p.shape and mask.dtype == p.dtype
        blocks = (mask == 0).reshape(p.shape[0] // n, n, p.shape[1] // m, m)
        per_block = blocks.sum(dim=(1, 3))
        # every block is all pruned or all kept
        assert set(per_block.unique().tolist()) <= {0, n * m}
        pruned_blocks += int((per_block == n * m).sum())
        total_blocks += per_block.numel()
        assert torch.equal(p.detach() == 0, mask == 0)  # the weights carry the mask
    assert pruned_blocks == math.floor(ratio * total_blocks)
    assert pruner.pattern_sparsity() == pytest.approx(ratio, abs=1 / total_blocks)


def test_magnitude_blocks_pruned_are_the_smallest() -> None:
    w = torch.arange(1, 33, dtype=torch.float32).reshape(8, 4)  # 4x1 blocks: 2 x 4 of them
    pruner = _prune_once({"w": w}, 0.5, pattern="4x1")
    mask = pruner.masks["w"]
    # block means grow with the row index, so the first 4 rows' blocks go first
    assert bool((mask[:4] == 0).all()) and bool((mask[4:] == 1).all())


def test_channel_patterns_prune_whole_columns_or_rows() -> None:
    torch.manual_seed(1)
    w = {"a": torch.randn(8, 12)}
    cols = _prune_once(w, 0.5, pattern="channelx1").masks["a"]
    assert set((cols == 0).sum(dim=0).tolist()) == {0, 8}  # input channels: whole columns
    assert int(((cols == 0).sum(dim=0) == 8).sum()) == 6
    rows = _prune_once(w, 0.5, pattern="1xchannel").masks["a"]
    assert set((rows == 0).sum(dim=1).tolist()) == {0, 12}  # output channels: whole rows
    assert int(((rows == 0).sum(dim=1) == 12).sum()) == 4


def test_conv_output_channel_pruning_zeroes_whole_filters() -> None:
    torch.manual_seed(2)
    pruner = _prune_once({"conv": torch.randn(8, 4, 3, 3)}, 0.25, pattern="1xchannel")
    mask = pruner.masks["conv"]
    assert mask.shape == (8, 4, 3, 3)
    per_filter = (mask == 0).flatten(1).sum(dim=1)
    assert sorted(per_filter.tolist()) == [0] * 6 + [36] * 2


def test_conv_4x1_blocks_follow_the_permuted_view() -> None:
    torch.manual_seed(3)
    pruner = _prune_once({"conv": torch.randn(8, 4, 3, 3)}, 0.5, pattern="4x1")
    mask2d = to_2d(pruner.masks["conv"])  # [8, 3*3*4]
    blocks = (mask2d == 0).reshape(2, 4, 36, 1).sum(dim=(1, 3))
    assert set(blocks.unique().tolist()) <= {0, 4}
    assert int((blocks == 4).sum()) == 36


@pytest.mark.parametrize("reduce", ["mean", "sum", "max"])
def test_criterion_reduce_type(reduce: str) -> None:
    # block 0: [10, 0, 0, 0] (mean 2.5, sum 10, max 10); block 1: [3, 3, 3, 3] (mean 3, sum 12, max 3)
    w = torch.tensor([[10.0, 3.0], [0.0, 3.0], [0.0, 3.0], [0.0, 3.0]])
    pruner = _prune_once({"w": w}, 0.5, pattern="4x1", criterion_reduce_type=reduce)
    pruned_column = int((pruner.masks["w"] == 0).all(dim=0).nonzero())
    assert pruned_column == {"mean": 0, "sum": 0, "max": 1}[reduce]


def test_layers_that_do_not_divide_are_skipped_and_reported() -> None:
    torch.manual_seed(4)
    pruner = _prune_once({"ok": torch.randn(8, 8), "odd": torch.randn(6, 8)}, 0.5, pattern="4x1")
    assert list(pruner.params) == ["ok"]
    assert "odd" in pruner.invalid and "4x1" in pruner.invalid["odd"]
    nm = _prune_once({"ok": torch.randn(4, 8), "odd": torch.randn(4, 6)}, 0.5, pattern="2:4")
    assert list(nm.invalid) == ["odd"] and "M=4" in nm.invalid["odd"]


# -- N:M ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (4, 8), (1, 2)])
@pytest.mark.parametrize("scope", ["global", "local"])
def test_nm_groups_have_exactly_n_zeros(n: int, m: int, scope: str) -> None:
    torch.manual_seed(5)
    target = n / m * 0.5
    pruner = _prune_once(
        {"a": torch.randn(16, 32), "conv": torch.randn(8, 8, 3, 3)},
        target,
        pattern=f"{n}:{m}",
        pruning_scope=scope,
    )
    selected = total = 0
    for mask in pruner.masks.values():
        groups = (to_2d(mask) == 0).reshape(-1, m).sum(dim=1)
        assert set(groups.unique().tolist()) <= {0, n}  # a selected group has exactly N zeros
        selected += int((groups == n).sum())
        total += groups.numel()
    assert selected == math.floor(target * m / n * total) or scope == "local"
    assert pruner.pattern_sparsity() == pytest.approx(target, abs=n / m / 64)


def test_nm_full_target_prunes_every_group() -> None:
    torch.manual_seed(6)
    pruner = _prune_once(
        {"a": torch.randn(8, 16)}, 0.5, pattern="2:4", max_sparsity_ratio_per_op=0.98
    )
    groups = (pruner.masks["a"] == 0).reshape(-1, 4).sum(dim=1)
    assert groups.tolist() == [2] * 32
    # the zeros are the two smallest magnitudes of each group
    w = pruner.params["a"]
    assert pruner.pattern_sparsity() == pytest.approx(0.5)
    assert _zeros(w) == pytest.approx(0.5)


def test_nm_candidates_are_the_smallest_in_each_group() -> None:
    w = torch.tensor([[4.0, -1.0, 3.0, 0.5, 9.0, 8.0, -7.0, 0.1]])
    pruner = _prune_once({"a": w}, 0.5, pattern="2:4")
    assert (pruner.masks["a"] == 0).nonzero()[:, 1].tolist() == [1, 3, 6, 7]


# -- selection -------------------------------------------------------------------------------
def test_lowest_k_is_exact_with_ties() -> None:
    s = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 2.0])
    chosen = lowest_k(s, 2)
    assert int(chosen.sum()) == 2 and bool((s[chosen] == 0).all())
    assert int(lowest_k(s, 0).sum()) == 0 and int(lowest_k(s, 9).sum()) == 6
    s = torch.tensor([-math.inf, 5.0, -math.inf, 1.0])
    assert lowest_k(s, 3).tolist() == [True, False, True, True]


def test_global_scope_uses_one_ranking_and_local_scope_one_per_layer() -> None:
    scores = {"small": torch.arange(10.0), "big": torch.arange(10.0) + 100}
    chosen = select_global(scores, 0.5)
    assert int(chosen["small"].sum()) == 10 and int(chosen["big"].sum()) == 0
    local = select_local(scores, 0.5)
    assert int(local["small"].sum()) == 5 and int(local["big"].sum()) == 5
    assert local["small"][:5].all() and local["big"][:5].all()


def test_global_max_cap_moves_the_rest_to_other_layers() -> None:
    scores = {"small": torch.arange(10.0), "big": torch.arange(10.0) + 100}
    chosen = select_global(scores, 0.5, max_ratio=0.7)
    assert int(chosen["small"].sum()) == 7  # capped at 70 %
    assert int(chosen["big"].sum()) == 3  # the budget goes on
    assert chosen["big"][:3].all()


def test_global_min_floor_is_pruned_first() -> None:
    scores = {"small": torch.arange(10.0), "big": torch.arange(10.0) + 100}
    chosen = select_global(scores, 0.5, min_ratio=0.2)
    assert int(chosen["big"].sum()) == 2 and int(chosen["small"].sum()) == 8
    # the floor follows the schedule: at 10 % overall, at most 10 % per layer is forced
    early = select_global(scores, 0.1, min_ratio=0.2)
    assert int(early["big"].sum()) == 1 and int(early["small"].sum()) == 1


def test_caps_that_make_the_target_impossible_stop_at_the_caps() -> None:
    scores = {"a": torch.arange(10.0), "b": torch.arange(10.0)}
    chosen = select_global(scores, 0.9, max_ratio=0.5)
    assert int(chosen["a"].sum()) == 5 and int(chosen["b"].sum()) == 5


def test_already_pruned_units_stay_pruned() -> None:
    s = torch.tensor([-math.inf, 0.5, 0.2, 0.9, -math.inf, 0.7])
    chosen = select_local({"a": s}, 0.2)  # floor(0.2 * 6) = 1 < 2 already pruned
    assert chosen["a"].tolist() == [True, False, False, False, True, False]


def test_pruner_masks_only_grow_between_steps() -> None:
    torch.manual_seed(7)
    info = _info(
        target_sparsity=0.8, start_step=0, end_step=4, pattern="1x1", pruning_type="magnitude"
    )
    p = nn.Parameter(torch.randn(16, 16))
    pruner = BasicPruner(info, {"w": p})
    previous = torch.ones(16, 16, dtype=torch.bool)
    for step in range(5):
        pruner.on_step_begin(step)
        with torch.no_grad():  # training moves the weights, pruned ones included
            p.add_(torch.randn_like(p) * 0.5)
        keep = pruner.keep2d("w")
        assert bool((keep <= previous).all())
        previous = keep
        pruner.apply_masks()
    assert pruner.pattern_sparsity() == pytest.approx(0.8, abs=1 / 256)


def test_global_pruner_with_max_ratio_caps_a_layer() -> None:
    torch.manual_seed(8)
    small = torch.randn(8, 8) * 0.01  # would be pruned entirely by a global ranking
    big = torch.randn(8, 8)
    pruner = _prune_once(
        {"small": small, "big": big}, 0.5, pattern="1x1", max_sparsity_ratio_per_op=0.75
    )
    assert _zeros(pruner.params["small"]) == pytest.approx(0.75)
    assert _zeros(pruner.params["big"]) == pytest.approx(0.25)
    local = _prune_once({"small": small, "big": big}, 0.5, pattern="1x1", pruning_scope="local")
    assert _zeros(local.params["small"]) == _zeros(local.params["big"]) == 0.5
