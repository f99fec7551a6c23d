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


def test_fit_measures_the_summary_only_where_it_is_shown(monkeypatch, tmp_path, caplog, request):
    """A quiet runtime logger and no summary file: `fit` skips the summary's measurements
    (nobody sees them). Shown in the log or written as JSON: the same figures as before,
    the fp32 size measured on the unchanged model."""
    import functools
    import json
    import logging

    from neural_coder.runtime import quantization, summary
    from neural_coder.runtime.config import PostTrainingQuantConfig

    built: list[dict] = []
    real_build = summary.build_summary
    monkeypatch.setattr(
        summary, "build_summary", lambda *a: built.append(real_build(*a)) or built[-1]
    )
    monkeypatch.delenv("NEURAL_CODER_REPORT", raising=False)
    model = _mlp(64).eval()
    conf = PostTrainingQuantConfig(approach="dynamic")
    logger = logging.getLogger("neural_coder.runtime")
    # setLevel, not setattr: it clears the loggers' caches of isEnabledFor (an earlier
    # test's fit at INFO leaves "INFO: enabled" there)
    request.addfinalizer(functools.partial(logger.setLevel, logger.level))
    logger.setLevel(logging.WARNING)
    assert not summary.summary_shown()
    assert quantization.fit(model, conf) is not None and built == []

    target = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(target))
    q = quantization.fit(model, conf)
    written = json.loads(target.read_text())
    assert len(built) == 1 and written["size_before_bytes"] == state_dict_size(model)
    assert (
        written["size_after_bytes"] == state_dict_size(q.model)
        and written["quantized_modules"] == 2
    )

    monkeypatch.delenv("NEURAL_CODER_SUMMARY")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        quantization.fit(model, conf)
    assert len(built) == 2 and "compression summary" in caplog.text
