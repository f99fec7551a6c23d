"""The transfer-learning layout: `for phase in ["train", "val"]` inside the epoch loop and
the best val weights loaded back after the last epoch, rewritten and run.

The manager is prepared once, before the epoch loop (not once per epoch inside it),
and training ends after the reload, so QAT converts the best weights and the
fake-quant checkpoint saved during training still loads; the script then pickles
the whole QAT model it holds and it loads back."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "phase_loop_finetune.py"


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_best_weights_reloaded_then_converted(tmp_path, monkeypatch, approach):
    monkeypatch.setenv("EPOCHS", "2")
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    text = script.read_text()
    assert "on_epoch_begin(epoch)" in text and "on_epoch_begin(phase)" not in text
    reload = text.index("model.load_state_dict(torch.load(best_path))")
    assert text.index("prepare_compression(") < text.index("for epoch in range") < reload
    assert text.index("on_train_end()") > reload
    run, summary = run_script(script)
    assert summary["quantized_modules"] == 3, summary
    if "pruning" in approach:
        assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
    accuracy = float(re.findall(r"fine-tuned val accuracy: ([0-9.]+)", run.stdout)[-1])
    assert accuracy > 0.4
    # the model the script holds was pickled whole and loads back with the same accuracy
    assert float(re.findall(r"reloaded val accuracy: ([0-9.]+)", run.stdout)[-1]) == accuracy
