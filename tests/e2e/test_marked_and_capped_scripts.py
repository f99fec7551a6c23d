"""Two rewrites run: the marked loop of a file with two training loops is the one
compressed (the student's saved weights are pruned, the teacher's training untouched),
and a per-epoch batch cap keeps the fit before the last epoch's evaluation, which then
measures the int8 model."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e


def test_the_marked_loop_is_pruned(tmp_path):
    summary = rewrite_and_run(tmp_path, "two_loops_marked.py", "--approach", "pruning")
    assert summary["pruning_steps_seen"] == 48  # the student's 3 epochs of 16 batches
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    saved = torch.load(tmp_path / "student.pt", weights_only=True)
    weights = [v for k, v in saved.items() if k.endswith("weight")]
    assert sum(int((w == 0).sum()) for w in weights) > 0, "the student was not pruned"


def test_a_per_epoch_cap_keeps_the_fit_before_the_last_evaluation(tmp_path):
    summary = rewrite_and_run(tmp_path, "capped_epochs_eval.py", "--approach", "ptq-dynamic")
    assert summary["quantized_modules"] == 2
    text = (tmp_path / "capped_epochs_eval.py").read_text()
    assert "if epoch == args.epochs - 1:" in text
