"""Rewrite each training style for each approach, execute the result, and check
what the compression did from the runtime's JSON summary."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import APPROACHES, OWN_TRAINING_SAMPLES, TRAINING_STYLES, script_path
from tests.e2e.runner import rewrite_and_run

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


@pytest.mark.parametrize(("name", "approach"), CASES)
def test_rewritten_script_runs_and_compresses(tmp_path, name, approach):
    summary = rewrite_and_run(
        tmp_path, name, "--approach", approach, "--target-sparsity", str(TARGET_SPARSITY)
    )
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
    summary = rewrite_and_run(
        tmp_path, name, "--approach", "distillation", "--teacher", "teacher.pt"
    )
    assert summary["distillation_steps"] > 0


def test_a_lora_model_is_distilled_and_its_adapters_saved(tmp_path):
    summary = rewrite_and_run(tmp_path, "peft_lora_finetune.py", "--approach", "distillation")
    assert summary["distillation_steps"] > 0
    assert (tmp_path / "peft_lora_out" / "adapter_config.json").is_file()
