"""A batch loop that defines `_forward` / `_backward` helpers and calls them on both paths
of a `no_sync()` choice, accumulating gradients (large training frameworks' style),
rewritten and run: pruning counts optimizer steps, not batches, and reaches its target;
the moving average saved beside the model is as sparse; QAT converts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neural_coder.runtime.loading import structure_for
from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

SAMPLE = "closure_accum_train.py"


def _rewritten(tmp_path, approach):
    script = tmp_path / SAMPLE
    script.write_text(script_path(SAMPLE).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    return script


def test_pruning_with_accumulation_amp_and_a_moving_average(tmp_path):
    script = _rewritten(tmp_path, "pruning")
    args = ("--amp", "--grad-accum-steps", "2", "--model-ema", "--clip-grad", "1.0")
    summary = run_script(script, *args)[1]
    assert summary["pruning_steps_seen"] == 24  # 3 epochs of 16 batches, 2 per step
    assert summary["pruning_target_reached"] is True
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state_dict_ema"]
    pruned = [saved["0.weight"], saved["2.weight"]]
    assert sum(int((w == 0).sum()) for w in pruned) == sum(w.numel() for w in pruned) // 2


def test_qat_converts_the_model_trained_through_the_helpers(tmp_path):
    summary = run_script(_rewritten(tmp_path, "qat"))[1]
    assert summary["quantized_modules"] == 3


def test_qat_with_a_moving_average_checkpoints_a_copy_that_reloads_as_int8(tmp_path):
    # before: a warning to run without --model-ema (the average stayed float); now the
    # average is made of the fake-quant model, so the checkpoint of it that the loop saves
    # reloads as the int8 model it would have become
    script = _rewritten(tmp_path, "qat")
    summary = run_script(
        script, "--amp", "--grad-accum-steps", "2", "--model-ema", "--epochs", "1"
    )[1]
    assert summary["quantized_modules"] == 3
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state_dict_ema"]
    float_model = nn.Sequential(
        nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 5)
    )
    int8, state = structure_for(saved, float_model)
    int8.load_state_dict(state)
    assert sum(isinstance(m, torch.ao.nn.quantized.Linear) for m in int8.modules()) == 3
    assert int8(torch.randn(2, 32)).shape == (2, 5)
