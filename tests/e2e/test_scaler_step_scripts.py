"""A timm-style `loss_scaler(loss, optimizer, update_grad=...)` loop rewritten and run: the
optimizer hooks fire inside the scaler's optimizer step, once per accumulated step."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("approach", ["pruning+qat", "distillation"])
def test_native_scaler_loop(tmp_path, approach):
    summary = rewrite_and_run(
        tmp_path, "native_scaler_loop.py", "--approach", approach, "--target-sparsity", "0.5"
    )
    if "pruning" in approach:
        # 512 / 16 = 32 batches a epoch, a step every 2, 2 epochs: 32 optimizer steps
        assert summary["pruning_steps_seen"] == 32
        assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
        assert summary["pruning_target_reached"] is True
        assert summary["quantized_modules"] == 4
    else:
        assert summary["distillation_steps"] == 64  # every micro-batch's loss is distilled
