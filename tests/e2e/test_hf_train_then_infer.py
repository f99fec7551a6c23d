"""Train with the Trainer, save the folder, load it back with the Auto class: after an
int8 approach the rewritten script loads it with `OptimizedModel`, and the model it
classifies with is the int8 one (a transformers class cannot load the runtime's int8
folder: "no file named model.safetensors"); so is the pipeline's model."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run_script, run_script

NAME = "hf_train_then_infer.py"


@pytest.mark.parametrize("approach", ["ptq-dynamic", "qat"])
def test_the_reloaded_classifier_is_the_int8_model(tmp_path, approach):
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert run.returncode == 0, run.stderr[-3000:]
    assert summary["quantized_modules"] > 0, summary
    for loaded_by in ("classifier", "pipeline"):
        layer = re.search(rf"{loaded_by} layer: (\S+)", run.stdout)
        # torch's dynamic int8 Linear, or the runtime's int8 module rebuilt after QAT
        assert layer and ".quant" in layer.group(1), run.stdout
    assert re.search(r"predictions: \[\d, \d, \d, \d\]", run.stdout)


@pytest.mark.parametrize("approach", ["ptq-dynamic", "qat"])
def test_a_folder_saved_to_the_training_arguments_output_dir_reloads_int8(tmp_path, approach):
    """`trainer.save_model()` (no folder) then `from_pretrained(args.out)`, the folder the
    TrainingArguments were given: the reloaded model is the int8 one (it was the float
    model after QAT, and "no file named model.safetensors" after ptq-dynamic)."""
    run, summary = rewrite_and_run_script(
        tmp_path, "trainer_output_dir_reload.py", "--approach", approach
    )
    assert summary["quantized_modules"] > 0, summary
    layer = re.search(r"reloaded layer: (\S+)", run.stdout)
    assert layer and ".quant" in layer.group(1), run.stdout
