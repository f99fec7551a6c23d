"""Post-training rewrites for `--target inc`, run on INC 2.6 itself. INC's tuning asserts
that `eval_func` returns a scalar (`np.isscalar`) and, when the assertion fails, logs an
error and keeps the fp32 model: a rewrite that runs but quantizes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.inc.interop import describe, last_json, requires_inc, run_under_inc

# an evaluation that returns (accuracy, seconds), the accuracy a tensor (summed without
# `.item()`): neither is a scalar to INC
SCRIPT = """import json
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
loader = DataLoader(TensorDataset(torch.randn(64, 16), torch.randint(0, 4, (64,))), batch_size=16)


def evaluate(net, data):
    net.eval()
    correct, start = 0, time.perf_counter()
    with torch.no_grad():
        for x, y in data:
            correct += (net(x).argmax(1) == y).sum()
    return correct / len(data.dataset), time.perf_counter() - start


acc, seconds = evaluate(model, loader)
inner = getattr(model, "_model", model)
int8 = [
    n
    for n, m in inner.named_modules()
    if type(m).__name__ in ("Linear", "LinearReLU") and ".quantized" in type(m).__module__
]
print(json.dumps({"accuracy": float(acc), "int8_modules": int8}))
"""


@pytest.mark.inc
@requires_inc
@pytest.mark.parametrize("approach", ["ptq-dynamic", "ptq-static"])
def test_a_tuple_of_tensors_from_the_evaluation_still_tunes_on_inc(tmp_path: Path, approach):
    script = tmp_path / "evaluate_tuple.py"
    script.write_text(SCRIPT)
    result = run_cli("optimize", script, "--approach", approach, "--target", "inc")
    assert result.exit_code == 0, result.output
    proc = run_under_inc(script, tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "eval_func should return a scalar" not in proc.stdout + proc.stderr, describe(proc)
    facts = last_json(proc)
    # before the fix INC kept the fp32 model: no int8 module (INC's FX dynamic path leaves
    # the fused Linear+ReLU in fp32, so dynamic quantizes the last Linear only)
    assert facts["int8_modules"], facts
