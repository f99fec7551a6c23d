"""`load_best_model_at_end` with pruning: a checkpoint saved before pruning ended is not
as sparse as asked, so `CompressionCallback` keeps the Trainer from reloading it as the
best one; before the fix, a run whose first evaluation scored best ended with that
checkpoint's sparsity (0.16 of 0.5 in a probe) and said nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("transformers")
from transformers import Trainer  # noqa: E402

from neural_coder.runtime.config import WeightPruningConfig  # noqa: E402
from neural_coder.runtime.integrations.hooks import TrainerHooks  # noqa: E402
from neural_coder.runtime.integrations.transformers import CompressionCallback  # noqa: E402
from neural_coder.runtime.training import prepare_compression  # noqa: E402

from .hf_models import RandomTextDataset, tiny_bert, training_args  # noqa: E402


def _hooks(end_step: int) -> TrainerHooks:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    cm = prepare_compression(
        model, WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=end_step)
    )
    hooks = TrainerHooks(cm)
    hooks.train_begin(model, None, max_steps=10)
    return hooks


def _state(best_step: int | None, global_step: int) -> SimpleNamespace:
    checkpoint = None if best_step is None else f"out/checkpoint-{best_step}"
    return SimpleNamespace(
        best_metric=None if best_step is None else 0.9,
        best_model_checkpoint=checkpoint,
        best_global_step=best_step,
        global_step=global_step,
    )


def test_a_best_checkpoint_saved_while_pruning_is_forgotten():
    hooks = _hooks(end_step=5)
    state = _state(best_step=5, global_step=5)
    hooks.forget_best_before_pruned(state, saved_now=True)
    assert (state.best_metric, state.best_model_checkpoint, state.best_global_step) == (
        None,
        None,
        None,
    )


def test_a_best_checkpoint_saved_after_pruning_stays():
    hooks = _hooks(end_step=5)
    state = _state(best_step=6, global_step=8)
    hooks.forget_best_before_pruned(state)
    assert state.best_model_checkpoint == "out/checkpoint-6" and state.best_metric == 0.9


def test_first_evaluation_best_still_ends_at_the_target_sparsity(tmp_path: Path):
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2, 0.1])  # the first checkpoint scores best

    def falling_metric(eval_pred):
        return {"score": next(scores)}

    torch.manual_seed(0)
    model = tiny_bert()
    cm = prepare_compression(
        model, WeightPruningConfig(target_sparsity=0.5, start_step=1, end_step=1)
    )
    trainer = Trainer(
        model=model,
        args=training_args(
            str(tmp_path / "out"),
            max_steps=8,
            eval_strategy="steps",
            save_strategy="steps",
            eval_steps=2,
            save_steps=2,
            load_best_model_at_end=True,
            metric_for_best_model="score",
            save_total_limit=1,
        ),
        train_dataset=RandomTextDataset(64),
        eval_dataset=RandomTextDataset(16, seed=1),
        compute_metrics=falling_metric,
        callbacks=[CompressionCallback(cm, prune_until=0.5)],
    )
    trainer.train()
    # pruning ended at step 4: checkpoint-6 (score 0.4) is the best of those after it
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-6")
    linears = [m for n, m in model.named_modules() if n in cm.summary["per_layer_sparsity"]]
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    assert zeros / sum(m.weight.numel() for m in linears) == pytest.approx(0.5, abs=0.02)
