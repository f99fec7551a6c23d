"""A Kaggle-style k-fold kernel (samples/kaggle_kfold_train.py: `train_loop(folds, fold)`
per fold, the best checkpoint kept in the epoch loop, tqdm over enumerate, accumulation
by `CFG`), rewritten and run: EVERY fold's compressed model is saved, each in its own
folder, not only the last fold's."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e

NAME = "kaggle_kfold_train.py"
FOLDS = 2


def _int8_weights(path) -> int:
    """int8 weights in a saved state dict: a conv's quantized weight, or a Linear's packed
    (weight, bias) pair."""
    state = torch.load(path, weights_only=False)
    values = [v[0] if isinstance(v, tuple) and v else v for v in state.values()]
    return sum(isinstance(v, torch.Tensor) and v.dtype == torch.qint8 for v in values)


@pytest.mark.parametrize("approach", ["qat", "ptq-static"])
def test_every_folds_compressed_model_is_saved_in_its_folder(tmp_path, monkeypatch, approach):
    monkeypatch.setenv("N_FOLD", str(FOLDS))
    monkeypatch.setenv("EPOCHS", "1")
    summary = rewrite_and_run(tmp_path, NAME, "--approach", approach)
    assert summary["quantized_modules"] == 3, summary
    saved = sorted((tmp_path / "neural_coder_output" / approach).iterdir())
    assert [p.name for p in saved] == [f"fold{f}" for f in range(FOLDS)]
    for folder in saved:
        # the conv, the strided conv and the fc head, int8 in every fold
        assert _int8_weights(folder / "best_model.pt") == 3, folder
    if approach == "ptq-static":
        # tuned with valid_fn's loss: lower is better
        assert summary["higher_is_better"] is False, summary


def test_run_training_handing_back_the_model_saves_each_folds_int8_model(tmp_path, monkeypatch):
    """samples/kaggle_run_training.py: `model, history = run_training(...)`, the best
    weights loaded back inside it, then `del model`: QAT converts after the reload and
    saves the int8 model of every fold."""
    monkeypatch.setenv("N_FOLD", str(FOLDS))
    monkeypatch.setenv("EPOCHS", "1")
    summary = rewrite_and_run(tmp_path, "kaggle_run_training.py", "--approach", "qat")
    assert summary["quantized_modules"] == 3, summary
    saved = sorted((tmp_path / "neural_coder_output" / "qat").iterdir())
    assert [p.name for p in saved] == [f"fold{f}" for f in range(FOLDS)]
    for folder in saved:
        assert _int8_weights(folder / "best_model.pt") == 3, folder  # the three Linears
