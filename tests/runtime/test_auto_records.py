"""What the runtime gives `neural-coder auto`: JSON-lines records of each fit and
benchmark (`NEURAL_CODER_REPORT`), a short loader cycled to enough timed batches
(`NEURAL_CODER_BENCHMARK_MIN_BATCHES`), and bf16 that leaves the Linear layers of
torch's fused transformer layers in fp32 (their fast path reads the weights directly)."""

from __future__ import annotations

import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import benchmark, quantization
from neural_coder.runtime.config import (
    BenchmarkConfig,
    MixedPrecisionConfig,
    PostTrainingQuantConfig,
)
from neural_coder.runtime.mix_precision import _candidates


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


def _loader(batches: int = 2) -> DataLoader:
    x = torch.randn(4 * batches, 8)
    return DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=4)


def test_fit_and_benchmark_append_one_record_each(tmp_path, monkeypatch, capsys):
    records = tmp_path / "records.jsonl"
    monkeypatch.setenv("NEURAL_CODER_REPORT", str(records))
    model = _net()
    loader = _loader()
    q = quantization.fit(
        model,
        PostTrainingQuantConfig(approach="dynamic"),
        eval_func=lambda m: 1.0 - 0.0 * float(m(torch.ones(1, 8)).detach().sum()),
    )
    assert q is not None
    benchmark.fit(q.model, BenchmarkConfig(warmup=0, iteration=2), b_dataloader=loader)
    fit, bench = [json.loads(line) for line in records.read_text().splitlines()]
    assert fit["kind"] == "fit" and fit["baseline_metric"] == 1.0 and fit["final_metric"] == 1.0
    assert fit["higher_is_better"] is True and fit["approach"] == "post_training_dynamic_quant"
    assert fit["quantized_modules"] == 2
    assert bench["kind"] == "benchmark" and bench["batch_size"] == 4
    assert bench["p50_ms"] > 0 and bench["throughput"] > 0
    assert bench["size_bytes"] == fit["size_after_bytes"]


def test_a_short_loader_is_cycled_only_when_asked(monkeypatch, capsys):
    loader = _loader(batches=2)
    conf = BenchmarkConfig(warmup=1, iteration=50)
    plain = benchmark.fit(_net(), conf, b_dataloader=loader)
    assert len(plain.instances[0].batch_seconds) == 1  # INC: the loader's 2 batches, 1 warm-up
    monkeypatch.setenv("NEURAL_CODER_BENCHMARK_MIN_BATCHES", "6")
    cycled = benchmark.fit(_net(), conf, b_dataloader=loader)
    assert len(cycled.instances[0].batch_seconds) == 6


def test_bf16_leaves_the_linears_of_fused_transformer_layers_in_fp32():
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    model = nn.Sequential(
        nn.TransformerEncoder(layer, 1, enable_nested_tensor=False), nn.Linear(16, 2)
    )
    assert _candidates(model, MixedPrecisionConfig()) == ["1"]
