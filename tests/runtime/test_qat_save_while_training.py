"""A plain loop that saves its best epoch with `model.save_pretrained` while QAT trains:
the folder held fake-quant weights that loaded back as a float model (the QAT result
lost); now the saved config records the QAT recipe, as the Trainer integration does, and
`OptimizedModel.from_pretrained` builds the int8 model from it."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")

from neural_coder.runtime.config import QuantizationAwareTrainingConfig  # noqa: E402
from neural_coder.runtime.integrations.transformers import (  # noqa: E402
    QAT_RECIPE_KEY,
    OptimizedModel,
)
from neural_coder.runtime.training import prepare_compression  # noqa: E402

from .hf_models import RandomTextDataset, tiny_bert  # noqa: E402


def test_a_fake_quant_model_saved_mid_training_loads_back_int8(tmp_path):
    torch.manual_seed(0)
    cm = prepare_compression(tiny_bert(), QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    model = cm.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {
        k: torch.stack([RandomTextDataset(4)[i][k] for i in range(4)])
        for k in ("input_ids", "labels")
    }
    model(**batch).loss.backward()
    optimizer.step()
    model.save_pretrained(tmp_path / "best")  # the loop's best epoch, before training ends
    assert not hasattr(model.config, QAT_RECIPE_KEY)  # the live config is left as it was
    saved = json.loads((tmp_path / "best" / "config.json").read_text())
    assert saved[QAT_RECIPE_KEY]["approach"] == "quant_aware_training"

    int8 = OptimizedModel.from_pretrained(str(tmp_path / "best"))
    kinds = {type(m).__name__ for m in int8.modules()}
    assert "QuantizedLinear" in kinds
    cm.callbacks.on_train_end()
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"]).logits
        got = int8(input_ids=batch["input_ids"]).logits
    torch.testing.assert_close(got, expected)  # the same int8 model as the run's own


def test_a_float_model_without_qat_saves_no_recipe(tmp_path):
    from neural_coder.runtime.config import WeightPruningConfig

    cm = prepare_compression(tiny_bert(), WeightPruningConfig(target_sparsity=0.5))
    cm.callbacks.on_train_begin()
    cm.model.save_pretrained(tmp_path / "out")
    assert QAT_RECIPE_KEY not in json.loads((tmp_path / "out" / "config.json").read_text())
