"""Scripts in the styles of the PyTorch examples that earlier probes did not cover, rewritten
and run: what the compression did must show in the model the script goes on with."""

from __future__ import annotations

from tests.e2e.runner import rewrite_and_run


def test_seq2seq_with_masks_built_in_the_loop_is_calibrated_and_quantized(tmp_path):
    """The loop computes the masks and the shifted target from each batch: calibration runs
    the script's evaluation, so the fit converts (it fed `model(src)` and kept fp32)."""
    summary = rewrite_and_run(tmp_path, "seq2seq_masks_translate.py", "--approach", "ptq-static")
    assert summary["quantized_modules"] > 0, summary
