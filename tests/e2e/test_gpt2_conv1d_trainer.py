"""A GPT-2 Trainer script rewritten for QAT: GPT-2's attention and MLP layers are
transformers' Conv1D, which the run quantized none of before (quantized_modules 0: the
rewrite did nothing); now each becomes an int8 Linear and the saved model is int8."""

from __future__ import annotations

import json

import pytest

from neural_coder.runtime.integrations.transformers import OptimizedModel
from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "optional_eval_trainer.py"  # one GPT-2 layer: c_attn, attn.c_proj, c_fc, mlp.c_proj


def test_qat_of_a_gpt2_trainer_quantizes_its_conv1d_layers(tmp_path):
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", "qat")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] >= 4, summary
    # save_model wrote the fake-quant model with its QAT recipe, which loads back as int8
    config = json.loads((tmp_path / "sft_out" / "config.json").read_text())
    assert "neural_coder_qat_recipe" in config
    int8 = OptimizedModel.from_pretrained(str(tmp_path / "sft_out"))
    assert {"transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"} <= {
        name for name, module in int8.named_modules() if type(module).__name__ == "QuantizedLinear"
    }
