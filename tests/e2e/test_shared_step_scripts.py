"""A step shared by training and validation (`step(batch, is_train)`, validation run
without `torch.no_grad()`), rewritten and run: the per-batch hooks count the training
batches only. 8 training and 2 validation batches an epoch, 2 epochs: 16 steps."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e

NAME = "shared_step_train_eval.py"
TRAINING_STEPS = 2 * 8


def test_distillation_runs_the_teacher_on_training_batches_only(tmp_path, monkeypatch):
    monkeypatch.setenv("EPOCHS", "2")
    summary = rewrite_and_run(tmp_path, NAME, "--approach", "distillation")
    # unguarded, the 4 validation batches (grad enabled) were distilled too: 20
    assert summary["distillation_steps"] == TRAINING_STEPS, summary


def test_pruning_counts_training_steps_and_reaches_its_target(tmp_path, monkeypatch):
    monkeypatch.setenv("EPOCHS", "2")
    summary = rewrite_and_run(tmp_path, NAME, "--approach", "pruning+qat")
    assert summary["pruning_steps_seen"] == TRAINING_STEPS, summary
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
    assert summary["quantized_modules"] == 3, summary
