"""Hugging Face styles that were refused: a backward of the output's loss field
(`accelerator.backward(outputs.loss)`, refused for every approach, and for distillation
`outputs.loss.backward()` too), and an inference script under `if __name__ == "__main__":`
(ptq refused as "the quantized model would be thrown away"); and one that did nothing: bf16
tuned by an evaluation that only generates (no forward call to measure on). Rewritten,
they compress."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, rewrite_and_run_script, run_script


def test_distillation_of_the_output_loss_field_trains_against_the_teacher(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "accelerate_output_field_backward.py", "--approach", "distillation"
    )
    assert summary["distillation_steps"] == 12, summary  # 6 batches x 2 epochs


def test_pruning_of_the_output_loss_field_loop_reaches_its_sparsity(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "accelerate_output_field_backward.py", "--approach", "pruning"
    )
    assert abs(summary["sparsity"] - 0.5) < 0.02, summary


def test_the_pipeline_under_the_main_guard_classifies_with_the_int8_model(tmp_path):
    name = "pipeline_main_guard_infer.py"
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0, summary
    layer = re.search(r"classifier layer: (\S+)", run.stdout)
    assert layer and ".quant" in layer.group(1), run.stdout
    assert re.search(r"agreement \d", run.stdout), run.stdout


def test_bf16_of_a_model_evaluated_by_generating_measures_on_the_loader(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_BF16", "1")  # past the CPU check; the batch is still needed
    summary = rewrite_and_run(tmp_path, "generate_eval_bf16.py", "--approach", "bf16")
    assert summary["bf16_measurements"], summary  # measured on a batch of the loader
    assert summary["bf16_modules"] > 0, summary


def test_distillation_of_logits_unpacked_from_a_tuple_output_meets_the_teachers_logits(tmp_path):
    """`loss, logits = model(..., labels=y, return_dict=False)`: the teacher returns
    `(loss, logits)` too; the run crashed comparing the logits with its loss."""
    summary = rewrite_and_run(tmp_path, "tuple_output_hf_loop.py", "--approach", "distillation")
    assert summary["distillation_steps"] == 12, summary  # 6 batches x 2 epochs


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_a_fresh_transformers_instance_loads_the_int8_state_dict(tmp_path, approach):
    """`fresh = DistilBertForTokenClassification(model.config); fresh.load_state_dict(
    torch.load(path))` crashed on the int8 state dict ("Missing key(s)")."""
    run, summary = rewrite_and_run_script(
        tmp_path, "hf_state_dict_reload.py", "--approach", approach
    )
    assert summary["quantized_modules"] > 0, summary
    layer = re.search(r"reloaded layer: (\S+)", run.stdout)
    assert layer and ".quant" in layer.group(1), run.stdout
    assert "reloaded tag accuracy" in run.stdout
