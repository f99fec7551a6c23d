"""Which model is compressed and what teaches it, run on tiny synthetic data: the
script's own frozen teacher, the default copy of a model loaded trained (called as
the student is, `model(data, hidden)`), whole-model saves under QAT, and an eval
script whose checkpoint dict, config, meter and loss object are not models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, run_script, sample_module

pytestmark = pytest.mark.e2e



def test_the_scripts_frozen_teacher_teaches_the_student(tmp_path):
    kd = sample_module("kd_teacher_student.py")
    torch.save(kd.TeacherNet().state_dict(), tmp_path / "teacher_best.pth")
    summary = rewrite_and_run(tmp_path, "kd_teacher_student.py", "--approach", "distillation")
    assert summary["distillation_steps"] > 0
    text = (tmp_path / "kd_teacher_student.py").read_text()
    assert "teacher_model=teacher," in text and "deepcopy" not in text
    assert "teacher_output=teacher_batch" in text  # the teacher does not run twice


def test_only_the_student_is_quantized(tmp_path):
    kd = sample_module("kd_teacher_student.py")
    torch.save(kd.TeacherNet().state_dict(), tmp_path / "teacher_best.pth")
    summary = rewrite_and_run(tmp_path, "kd_teacher_student.py", "--approach", "qat")
    assert summary["quantized_modules"] == 2  # the student's conv and fc; the teacher has 3


def pretrained_lm(tmp_path: Path) -> None:
    lm = sample_module("rnn_lm_finetune.py")
    torch.manual_seed(1)
    torch.save(lm.LSTMLanguageModel(50, 16, 32, 1).state_dict(), tmp_path / "lm_pretrained.pt")


def test_a_model_loaded_trained_is_its_own_teacher_called_with_its_hidden_state(tmp_path):
    pretrained_lm(tmp_path)
    summary = rewrite_and_run(tmp_path, "rnn_lm_finetune.py", "--approach", "distillation")
    assert summary["distillation_steps"] > 0
    text = (tmp_path / "rnn_lm_finetune.py").read_text()
    assert "model_inputs = (data, hidden)" in text


def test_a_whole_model_saved_during_qat_loads_back_and_runs(tmp_path):
    pretrained_lm(tmp_path)
    summary = rewrite_and_run(tmp_path, "rnn_lm_finetune.py", "--approach", "qat")
    assert summary["quantized_modules"] > 0
    check = (
        "import sys, torch, __main__\n"
        "sys.path.insert(0, '.')\n"
        "from rnn_lm_finetune import LSTMLanguageModel\n"
        "__main__.LSTMLanguageModel = LSTMLanguageModel\n"
        "model = torch.load('lm_finetuned.pt', weights_only=False)\n"
        "hidden = model.init_hidden(2)\n"
        "output, _ = model(torch.randint(0, 50, (8, 2)), hidden)\n"
        "assert output.shape == (8, 2, 50), output.shape\n"
        "print('loaded', type(model).__name__)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "loaded Model" in run.stdout, run.stderr[-2000:]


def test_an_untrained_model_gets_no_default_teacher(tmp_path):
    script = tmp_path / "rnn_lm_finetune.py"
    text = script_path("rnn_lm_finetune.py").read_text()
    text = text.replace(
        "    model.load_state_dict(torch.load(args.pretrained, weights_only=True))\n", ""
    )
    script.write_text(text)
    result = run_cli("optimize", script, "--approach", "distillation")
    assert result.exit_code == 1
    assert "randomly initialised (LSTMLanguageModel() at line 102)" in result.output, result.output
    assert "--teacher" in result.output
    assert script.read_text() == text


def test_checkpoint_dicts_meters_and_criteria_are_not_models(tmp_path):
    ev = sample_module("eval_checkpoint.py")
    model = ev.MLPClassifier(ev.ModelConfig())
    torch.save(
        {"model": model.state_dict(), "config": vars(ev.ModelConfig()), "epoch": 3},
        tmp_path / "classifier_ckpt.pth",
    )
    script = tmp_path / "eval_checkpoint.py"
    script.write_text(script_path("eval_checkpoint.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0
    assert "test accuracy" in run.stdout  # the quantized model is the one evaluated
