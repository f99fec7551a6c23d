"""Layouts probed beside the usual loop: a model trained inside nn.DataParallel and saved
through `.module`, then loaded into a fresh model from the same factory. Each is
rewritten, run, and checked from the summary and what the script itself saved."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run_script

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_a_data_parallel_model_saved_through_module_reloads_as_int8(tmp_path, approach):
    # QAT's reload went unnoticed (the model's origin was the wrap); a post-training fit of
    # the wrap saved `.module` without the int8 recipe: both crashed in test()'s reload
    run, summary = rewrite_and_run_script(
        tmp_path, "dataparallel_module_save.py", "--approach", approach
    )
    assert summary["quantized_modules"] == 3
    assert "test accuracy" in run.stdout
    saved = torch.load(tmp_path / "mlp.pt", weights_only=False)
    assert any("_packed_params" in key for key in saved)
