"""The summary's size lines say what is true: larger int8 models say why, pruned models say
how many weights are zero in dense storage and what sparse storage would take."""

from __future__ import annotations

import torch
from torch import nn

from neural_coder.runtime.summary import build_summary, format_table, state_dict_size


def _mlp(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 4))


def test_pruned_weights_are_counted_and_csr_is_estimated():
    model = _mlp(256)
    with torch.no_grad():
        weight = model[0].weight
        weight[weight.abs() < weight.abs().flatten().kthvalue(int(0.9 * weight.numel())).values] = 0
    before = state_dict_size(model)
    summary = build_summary(model, before, {"techniques": ["pruning"]})
    zeros = int((model[0].weight == 0).sum()) + int((model[2].weight == 0).sum())
    assert summary["weights_zero"] == zeros and summary["weights_total"] == 256 * 256 + 4 * 256
    # 90 % zeros: CSR (value + int32 index per non-zero) is much smaller than dense
    assert summary["sparse_size_bytes"] < 0.4 * before
    table = format_table(summary)
    assert "(same storage)" in table and "kept in dense storage" in table
    assert "sparse (CSR)" in table and "smaller)" not in table


def test_a_tiny_int8_model_that_grows_says_why():
    model = _mlp(8).eval()
    int8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    summary = build_summary(int8, state_dict_size(model))
    assert summary["size_after_bytes"] > summary["size_before_bytes"]
    assert summary["int8_weight_bytes"] == 8 * 8 + 4 * 8
    table = format_table(summary)
    assert "x larger)" in table and "cannot amortise" in table


def test_a_large_int8_model_is_smaller_without_excuses():
    model = _mlp(512).eval()
    int8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    table = format_table(build_summary(int8, state_dict_size(model)))
    assert "x smaller)" in table and "why" not in table and "weights zero" not in table
