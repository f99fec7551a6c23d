"""A consistency-distillation step with a frozen teacher and an EMA target, run end to end.

The student is the model the optimizer updates: pruning and QAT go on it (not on the
EMA target that is only ever copied into), and the post-training fit is not tuned
with `unwrap_model()`, a helper that hands the model back and measures nothing.
"""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "ema_consistency_train.py"


def rewrite(tmp_path, *options: str):
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, *options)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    return script, result.output


def test_student_not_the_ema_target_is_pruned_and_quantized(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPS", "20")
    script, _ = rewrite(tmp_path, "--approach", "pruning+qat", "--target-sparsity", "0.5")
    text = script.read_text()
    assert re.search(r"prepare_compression\(\s*student\b", text), text
    _, summary = run_script(script)
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
    assert summary["quantized_modules"] == 3, summary  # inp, mid, out of the student
    saved = torch.load(tmp_path / "student.pt", weights_only=False)
    assert any(key.endswith(".zero_point") for key in saved), list(saved)


def test_unwrap_helper_is_no_evaluation_for_the_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPS", "10")
    script, output = rewrite(tmp_path, "--approach", "ptq-dynamic")
    assert "eval_func" not in script.read_text()
    assert "no evaluation of the model was found" in output
    run, summary = run_script(script)
    assert "saved student.pt" in run.stdout
    assert summary["quantized_modules"] == 3, summary
    saved = torch.load(tmp_path / "student.pt", weights_only=False)
    assert any("_packed_params" in key for key in saved), list(saved)
