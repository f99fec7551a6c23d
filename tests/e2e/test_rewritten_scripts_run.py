"""Rewrite each training style for each approach, execute the result, and check
what the compression did from the runtime's JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APPROACHES, OWN_TRAINING_SAMPLES, TRAINING_STYLES, run_cli, script_path

pytestmark = pytest.mark.e2e

FAST = ["flat_script.py", "step_budget_loop.py"]
CASES = sorted(
    {(name, approach) for name in FAST for approach in APPROACHES}
    | {
        (name, approach)
        for name in TRAINING_STYLES + OWN_TRAINING_SAMPLES
        for approach in ("qat", "pruning", "distillation", "distillation+pruning+qat")
    }
)
TARGET_SPARSITY = 0.5


def rewrite_and_run(tmp_path: Path, name: str, *options: str) -> dict:
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, *options)
    assert result.exit_code == 0, result.output
    summary = tmp_path / "summary.json"
    env = {**os.environ, "NEURAL_CODER_SUMMARY": str(summary), "PYTHONHASHSEED": "0"}
    run = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    return json.loads(summary.read_text())


@pytest.mark.parametrize(("name", "approach"), CASES)
def test_rewritten_script_runs_and_compresses(tmp_path, name, approach):
    summary = rewrite_and_run(tmp_path, name, "--approach", approach, "--target-sparsity", str(TARGET_SPARSITY))
    techniques = approach.split("+")
    if "pruning" in techniques:
        assert summary["target_sparsity"] == TARGET_SPARSITY
        # 4x1 blocks: the reached sparsity equals the target within one block's granularity
        assert summary["sparsity"] == pytest.approx(TARGET_SPARSITY, abs=0.02), summary
        assert summary["pruning_target_reached"] is True
    else:
        assert summary["sparsity"] is None
    if "qat" in techniques:
        assert summary["quantized_modules"] > 0
    else:
        assert summary["quantized_modules"] == 0
    if "distillation" in techniques:
        assert summary["distillation_steps"] > 0
    else:
        assert summary["distillation_steps"] == 0


def test_teacher_from_a_checkpoint(tmp_path):
    """--teacher path.pt: the teacher is the model with the checkpoint's weights."""
    import torch

    from neural_coder.analysis import analyze, parse_source  # noqa: F401 - the package must import

    name = "step_budget_loop.py"
    sys.path.insert(0, str(script_path(name).parent))
    try:
        import step_budget_loop  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    torch.save(step_budget_loop.build_model().state_dict(), tmp_path / "teacher.pt")
    summary = rewrite_and_run(tmp_path, name, "--approach", "distillation", "--teacher", "teacher.pt")
    assert summary["distillation_steps"] > 0
