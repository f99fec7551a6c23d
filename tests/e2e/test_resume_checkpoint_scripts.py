"""A script that checkpoints each epoch, rewritten for QAT and run twice, the second
time with `--resume` of the checkpoint the first run saved (fake-quant state in it): the
resumed run trains on from the next epoch and ends int8."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run_script, run_script

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_a_resumed_qat_run_goes_on_from_its_own_checkpoint(tmp_path, approach):
    first, summary = rewrite_and_run_script(
        tmp_path, "resume_own_checkpoint.py", "--approach", approach
    )
    assert summary["quantized_modules"] == 2
    saved = torch.load(tmp_path / "ckpt" / "checkpoint.pth", weights_only=True)
    assert saved["epoch"] == 1
    assert any("fake_quant" in k for k in saved["model"])  # saved while QAT trained
    (tmp_path / "summary.json").unlink()
    resumed, summary = run_script(
        tmp_path / "resume_own_checkpoint.py", "--epochs", "3", "--resume", "ckpt/checkpoint.pth"
    )
    assert "epoch 2 acc" in resumed.stdout and "epoch 1 acc" not in resumed.stdout
    assert summary["quantized_modules"] == 2
    final = torch.load(tmp_path / "ckpt" / "final.pth", weights_only=False)
    assert any(k.endswith("_packed_params._packed_params") for k in final)  # int8 Linear
    if approach == "pruning+qat":
        assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
