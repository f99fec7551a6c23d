"""Detection-codebase style training: an endless loader zipped with
`range(start_iter, max_iter)`, a model whose forward returns its losses in training
mode and predictions in eval mode. Rewritten for pruning+qat and run: the schedule is
fitted to the range (the loader has no len()), and the int8 model still runs its eval
branch (QAT does not trace the forward in train mode)."""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "iteration_budget_train.py"


def test_endless_loader_with_an_iteration_range_is_pruned_and_quantized(tmp_path):
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", "pruning+qat", "--target-sparsity", "0.5")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert "len(range(start_iter, max_iter))" in script.read_text()
    run, summary = run_script(script, "--max-iter", "40")
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
    assert summary["quantized_modules"] == 4, summary
    assert summary["qat_path"] == "eager" and "self.training" in summary["qat_fallback_reason"]
    assert float(re.findall(r"accuracy ([0-9.]+)", run.stdout)[-1]) > 0.6
    saved = torch.load(tmp_path / "detector.pt", weights_only=False)
    assert any(key.endswith(".zero_point") for key in saved), list(saved)
