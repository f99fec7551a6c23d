"""Distillation where the student's prediction is read from its model call's output
(`model_pred = denoiser(..., return_dict=False)[0]`) or its output is sliced anew before
the loss (`logits = logits[..., :-1, :]`), and where the weights are loaded under a
condition the default of a flag makes true: the rewritten scripts run and distil. And a
model from a `build_model` classmethod loaded by a checkpointer object, evaluated on an
eval-only path: converted there."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, run_script, sample_module

pytestmark = pytest.mark.e2e



def test_a_prediction_read_as_the_first_element_of_the_output_is_distilled(tmp_path):
    torch.save(
        sample_module("denoiser_finetune.py").Denoiser().state_dict(),
        tmp_path / "denoiser_pretrained.pt",
    )
    summary = rewrite_and_run(tmp_path, "denoiser_finetune.py", "--approach", "distillation")
    assert summary["distillation_steps"] == 8  # 2 epochs of 4 batches
    text = (tmp_path / "denoiser_finetune.py").read_text()
    assert "model_pred = outputs[0]" in text
    assert (tmp_path / "denoiser_finetuned.pt").is_file()


def test_logits_shifted_before_the_loss_are_distilled_as_the_model_returned_them(tmp_path):
    torch.save(
        sample_module("shifted_lm_finetune.py").TinyCausalLM().state_dict(),
        tmp_path / "lm_pretrained.pt",
    )
    summary = rewrite_and_run(tmp_path, "shifted_lm_finetune.py", "--approach", "distillation")
    assert summary["distillation_steps"] == 8
    assert (
        "student_output = logits  # neural-coder"
        in (tmp_path / "shifted_lm_finetune.py").read_text()
    )


def test_weights_loaded_under_a_condition_the_default_flag_makes_true_teach(tmp_path):
    module = sample_module("weights_flag_train.py")
    torch.save({"model": module.GridDetector().state_dict()}, tmp_path / "detector_pretrained.pt")
    summary = rewrite_and_run(tmp_path, "weights_flag_train.py", "--approach", "distillation")
    assert summary["distillation_steps"] == 8  # 2 epochs of 4 batches
    assert (
        "teacher_model = copy.deepcopy(model)" in (tmp_path / "weights_flag_train.py").read_text()
    )


def test_a_built_model_loaded_by_a_checkpointer_is_converted_on_the_eval_only_path(tmp_path):
    module = sample_module("builder_eval_only.py")
    torch.save(module.Classifier(16, 4).state_dict(), tmp_path / "classifier_final.pth")
    script = tmp_path / "builder_eval_only.py"
    script.write_text(script_path("builder_eval_only.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0, result.output
    run, summary = run_script(script, "--eval-only")
    assert summary["quantized_modules"] >= 1
    assert "evaluated torch.ao.nn.quantized.dynamic" in run.stdout  # the int8 model is tested
