"""K-fold cross-validation (a fresh model per fold, an inline loss backed up), rewritten
and run: every fold's model is compressed, and each one saved is the compressed one."""

from __future__ import annotations

import re

import pytest
import torch

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e

NAME = "kfold_cv.py"


def _quantized_linears(path) -> int:
    model = torch.load(path, weights_only=False)
    return sum(
        "quantized" in type(m).__module__ and type(m).__name__ in {"Linear", "LinearReLU"}
        for m in model.modules()
    )


@pytest.mark.parametrize("approach", ["ptq-static", "pruning+qat"])
def test_each_fold_saves_its_compressed_model(tmp_path, monkeypatch, approach):
    monkeypatch.setenv("FOLDS", "2")
    summary = rewrite_and_run(tmp_path, NAME, "--approach", approach)
    text = (tmp_path / NAME).read_text()
    # prepared (or fitted) in the fold loop, once per fold's model, never on the factory
    assert "make_model = " not in text
    assert re.search(r"\n    (compression_manager = prepare_compression|quantized_model = )", text)
    for fold in range(2):
        assert _quantized_linears(tmp_path / f"fold{fold}.pt") == 3, fold
    if "pruning" in approach:
        assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
