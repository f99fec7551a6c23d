"""A distillation Trainer subclass whose student `model_init` builds at each train() (the
final Trainer built again after a search): QAT compresses the model the run trains.
Rewritten, run, checked from the summary and the saved model."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e


def test_qat_of_the_student_model_init_builds(tmp_path):
    summary = rewrite_and_run(tmp_path, "distill_trainer_model_init.py", "--approach", "qat")
    assert summary["quantized_modules"] > 0
    assert summary["techniques"] == ["qat"]
    saved = (tmp_path / "distilled" / "config.json").read_text()
    assert "neural_coder_qat_recipe" in saved  # the saved folder loads back as the int8 model
