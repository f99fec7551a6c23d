"""An optimizer step that runs the training step as its closure, run: a trainer class
whose `optimizer.step(partial(self.training_step, ...))` does the forward and backward,
and an L-BFGS script with a local `closure()`. The gradient hook runs after the backward
inside the closure, the mask hook after the step call; pruning reaches its target and
the saved model is the compressed one."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e

TARGET = 0.5


def _weights_sparsity(state: dict) -> float:
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


def test_trainer_class_with_a_partial_closure_is_pruned(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "closure_step_trainer.py", "--approach", "pruning", "--target-sparsity", str(TARGET)
    )
    assert summary["sparsity"] == pytest.approx(TARGET, abs=0.02), summary
    assert summary["pruning_target_reached"] is True
    saved = torch.load(tmp_path / "closure_trainer.pt", weights_only=True)
    assert _weights_sparsity(saved) > 0.3, "the saved model is not the pruned one"


def test_lbfgs_closure_is_pruned_and_quantized(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "lbfgs_closure.py", "--approach", "pruning+qat", "--target-sparsity", str(TARGET)
    )
    assert summary["sparsity"] == pytest.approx(TARGET, abs=0.02), summary
    assert summary["pruning_target_reached"] is True
    assert summary["quantized_modules"] > 0
    saved = torch.load(tmp_path / "lbfgs_model.pt", weights_only=True)
    assert any(key.endswith("scale") for key in saved), "the saved model is not the QAT one"
