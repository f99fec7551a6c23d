"""A Trainer given a model id (TRL style) builds the model itself: the callback prepares the
manager on that model when the Trainer is built. Rewritten, run, checked from the summary."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e

TEACHER = 'DistilBertForSequenceClassification.from_pretrained("tiny-distilbert-tickets")'


def test_pruning_and_qat_of_the_model_the_trainer_builds(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "model_id_trainer.py", "--approach", "pruning+qat", "--target-sparsity", "0.5"
    )
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["pruning_target_reached"] is True
    assert summary["quantized_modules"] > 0


def test_distillation_of_the_model_the_trainer_builds(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "model_id_trainer.py", "--approach", "distillation", "--teacher", TEACHER
    )
    assert summary["distillation_steps"] == 6
