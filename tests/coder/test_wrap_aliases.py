"""An alias bound right before the wrap (`model_without_ddp = model`, torchvision and
DeiT reference scripts) must name the prepared model: QAT replaces the model, and the
scripts save the alias and build the optimizer from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import run_cli

SCRIPT = """import argparse
import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--distributed", action="store_true")
args = parser.parse_args()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
model_without_ddp = model
if args.distributed:
    model = torch.nn.parallel.DistributedDataParallel(model)
    model_without_ddp = model.module
optimizer = torch.optim.SGD(model_without_ddp.parameters(), lr=0.1)
for epoch in range(2):
    for _ in range(4):
        x = torch.randn(8, 8)
        loss = nn.functional.cross_entropy(model(x), (x.sum(1) > 0).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save({"model": model_without_ddp.state_dict()}, "checkpoint.pth")
"""


def test_qat_is_prepared_before_the_alias_that_the_script_saves(tmp_path: Path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = run_cli("optimize", path, "--approach", "qat")
    assert result.exit_code == 0, result.output
    lines = path.read_text().splitlines()
    prepared = lines.index("model = compression_manager.model  # neural-coder")
    assert prepared < lines.index("model_without_ddp = model")
    run = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    saved = torch.load(tmp_path / "checkpoint.pth", weights_only=False)["model"]
    # the alias holds the QAT model: its fake-quant state is in the checkpoint
    assert any("fake_quant" in key or "activation_post_process" in key for key in saved), sorted(
        saved
    )
    second = run_cli("optimize", path, "--approach", "qat")
    assert second.exit_code == 0 and "nothing to do" in second.output
