"""QAT under autocast, run end to end: the runtime's fake-quant modules compute in fp32
and hand back the autocast dtype, so a script that trains in bf16 mixed precision on
the CPU trains with QAT and saves int8 modules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e


def test_qat_trains_under_cpu_bf16_autocast_and_saves_int8(tmp_path: Path):
    approach = "qat"
    script = tmp_path / "autocast_ctx_train.py"
    script.write_text(script_path("autocast_ctx_train.py").read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert "QAT under mixed precision" in result.output
    run, summary = run_script(script, "--max_iters", "12", "--out", "ckpt.pt")
    assert "(torch.bfloat16)" in run.stdout  # the forward really ran under autocast
    assert "qat" in summary["techniques"] and summary["quantized_modules"] == 3, summary
    state = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    int8 = {k.rsplit(".", 1)[0] for k in state if re.search(r"\.zero_point$", k)}
    assert {"mlp.0", "mlp.2", "lm_head"} <= int8, sorted(state)
