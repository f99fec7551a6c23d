"""Rewritten scripts run with the runtime's model calls recorded: calibration (and bf16's
timing batch) must call the model the way the script's own training loop does. Each
script runs under a small launcher that wraps the runtime's `call_model` in
trial_quantizer (calibration) and bf16 (timing) and writes what each call received to
calls.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

from neural_coder.runtime import load
from tests.e2e.runner import rewrite_and_run

RECORDING_LAUNCHER = """
import json, runpy, sys
import torch
import neural_coder.runtime.bf16 as bf16
import neural_coder.runtime.trial_quantizer as trial_quantizer

calls = []

def shape(value):
    if isinstance(value, torch.Tensor):
        return [str(value.dtype), list(value.shape)]
    return type(value).__name__

def recorded(real, where):
    def call_model(model, inputs):
        if isinstance(inputs, dict):
            calls.append({"at": where, "keywords": {k: shape(v) for k, v in inputs.items()}})
        elif isinstance(inputs, (tuple, list)):
            calls.append({"at": where, "positional": [shape(v) for v in inputs]})
        else:
            calls.append({"at": where, "positional": [shape(inputs)]})
        return real(model, inputs)
    return call_model

trial_quantizer.call_model = recorded(trial_quantizer.call_model, "calibration")
bf16.call_model = recorded(bf16.call_model, "bf16")
try:
    runpy.run_path(sys.argv[1], run_name="__main__")
finally:
    with open("calls.json", "w") as out:
        json.dump(calls, out)
"""
LAUNCHER = [sys.executable, "-c", RECORDING_LAUNCHER]


def recorded_calls(tmp_path: Path, at: str) -> list[dict]:
    calls = json.loads((tmp_path / "calls.json").read_text())
    return [c for c in calls if c["at"] == at]


class TinyGPT(nn.Module):
    """The architecture of samples/keyword_targets_train.py."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(24, 32)
        self.mlp = nn.Linear(32, 32)
        self.lm_head = nn.Linear(32, 24)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple:
        x = nn.functional.gelu(self.mlp(self.wte(idx)))
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        return logits, nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def test_targets_passed_by_keyword_reach_the_model_during_calibration(tmp_path):
    """`model(X, targets=Y)`: every calibration call gets idx and targets by keyword (a
    model called without targets would score only the last position: lm_head would be
    calibrated on 1 of 12 positions); the int8 model is saved under the script's
    `not dist.is_initialized() or dist.get_rank() == 0` check."""
    summary = rewrite_and_run(
        tmp_path, "keyword_targets_train.py", "-a", "ptq-static", launcher=LAUNCHER
    )
    assert summary["quantized_modules"] == 3  # the two Linears and the Embedding
    calls = recorded_calls(tmp_path, "calibration")
    assert len(calls) == 17  # ceil(100 samples / 6 per batch)
    expected = {"idx": ["torch.int64", [6, 12]], "targets": ["torch.int64", [6, 12]]}
    assert all(c.get("keywords") == expected for c in calls), calls[:2]
    model = load(tmp_path / "neural_coder_output" / "ptq-static", TinyGPT())
    assert isinstance(model.lm_head, torch.ao.nn.quantized.Linear)
    idx = torch.randint(0, 24, (2, 12))
    logits, loss = model(idx, targets=idx)
    assert logits.shape == (2, 12, 24) and loss.dim() == 0


def test_bf16_times_the_model_on_a_batch_with_its_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_BF16", "1")  # convert whatever this CPU measures
    summary = rewrite_and_run(tmp_path, "keyword_targets_train.py", "-a", "bf16", launcher=LAUNCHER)
    assert summary["bf16_modules"] == 2
    calls = recorded_calls(tmp_path, "bf16")
    assert calls and all(set(c.get("keywords", {})) == {"idx", "targets"} for c in calls)


def test_a_dual_encoder_is_calibrated_on_both_sides_of_each_pair(tmp_path):
    """`for queries, docs in train_loader: model(queries, docs)` on a loader of pairs:
    the runtime's rule for a plain batch would call `model(queries)` (the first item),
    which a forward that needs both cannot take, and the fit would keep the fp32 model."""
    summary = rewrite_and_run(
        tmp_path, "dual_encoder_pairs_train.py", "-a", "ptq-static", launcher=LAUNCHER
    )
    assert summary["quantized_modules"] == 3  # the Embedding and both projections
    calls = recorded_calls(tmp_path, "calibration")
    pair = {"positional": [["torch.int64", [8, 10]], ["torch.int64", [8, 10]]]}
    assert len(calls) == 8 and all(c == {"at": "calibration", **pair} for c in calls), calls[:2]


def test_dict_pairs_calibrate_the_encoder_on_the_anchor_ids_only(tmp_path):
    """`model(batch["anchor"])` on dict batches: each calibration call gets the anchor
    ids, one positional tensor; the runtime's rule for a dict batch would pass its keys
    (`anchor=`, `positive=`) as keyword inputs that the forward does not take."""
    summary = rewrite_and_run(
        tmp_path, "dict_pairs_embedding_train.py", "-a", "ptq-static", launcher=LAUNCHER
    )
    assert summary["quantized_modules"] == 2
    calls = recorded_calls(tmp_path, "calibration")
    anchors = {"at": "calibration", "positional": [["torch.int64", [8, 10]]]}
    assert len(calls) == 8 and all(c == anchors for c in calls), calls[:2]
