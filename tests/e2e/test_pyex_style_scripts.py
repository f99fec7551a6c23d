"""Scripts in the styles of the PyTorch examples that earlier probes did not cover, rewritten
and run: what the compression did must show in the model the script goes on with."""

from __future__ import annotations

import torch

from tests.e2e.runner import rewrite_and_run


def test_seq2seq_with_masks_built_in_the_loop_is_calibrated_and_quantized(tmp_path):
    """The loop computes the masks and the shifted target from each batch: calibration runs
    the script's evaluation, so the fit converts (it fed `model(src)` and kept fp32)."""
    summary = rewrite_and_run(tmp_path, "seq2seq_masks_translate.py", "--approach", "ptq-static")
    assert summary["quantized_modules"] > 0, summary


def test_reinforce_with_a_module_level_policy_trains_and_saves_the_int8_policy(tmp_path):
    """The policy is a module global that main() trains and select_action() samples from:
    QAT's re-binding is declared global, so the episodes run the prepared model and the
    int8 one is what the script saves (it raised UnboundLocalError, or was refused)."""
    summary = rewrite_and_run(tmp_path, "reinforce_episodes.py", "--approach", "qat")
    assert summary["quantized_modules"] > 0, summary
    saved = torch.load(tmp_path / "policy.pt", weights_only=False)
    assert any("scale" in key or "_packed_params" in key for key in saved), list(saved)
