"""A script that evaluates and saves a moving average of its model (YOLOv5's ModelEMA),
rewritten for pruning and run: the average it saves is as sparse as the model."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e


def test_the_saved_moving_average_is_pruned(tmp_path):
    summary = rewrite_and_run(tmp_path, "ema_detector_train.py", "--approach", "pruning")
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["averaged_copy_sparsity"] == [pytest.approx(summary["sparsity"], abs=1e-4)]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    pruned = [saved["stem.weight"], saved["body.1.weight"]]  # the head is left out
    zeros = sum(int((w == 0).sum()) for w in pruned)
    assert zeros == sum(w.numel() for w in pruned) // 2, "the saved average is not pruned"
