"""`quantization.fit` on a tiny Hugging Face BERT built from a config (no download):
FX cannot trace it, so static quantization takes the eager path and says so."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from neural_coder.runtime import load, quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.quant import get_backend

transformers = pytest.importorskip("transformers")

N_LINEAR = 14  # 2 layers x 6 + pooler + classifier
N_EMBEDDING = 3  # words, positions, token types: int8 weight-only
N_INT8 = N_LINEAR + N_EMBEDDING


def tiny_bert() -> nn.Module:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config).eval()


def collate(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = torch.stack(rows)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids[:, 0] % 2}


def data() -> DataLoader:
    ids = torch.randint(1, 100, (32, 12), generator=torch.Generator().manual_seed(1))
    return DataLoader(list(ids), batch_size=8, collate_fn=collate)


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def int8_names(model: nn.Module) -> set[str]:
    return set(get_backend().quantized_module_names(model))


def test_static_falls_back_to_the_eager_path_quantizes_every_linear_and_says_so(
    tmp_path, monkeypatch, caplog
):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = tiny_bert()
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        q = quantization.fit(model, PostTrainingQuantConfig(), calib_dataloader=data())
    assert q is not None
    assert q.q_config["path"] == "eager" and q.q_config["fallback_reason"]
    assert len(int8_names(q.model)) == N_INT8
    assert "cannot be FX-traced" in caplog.text and "17 module(s) in int8" in caplog.text
    batch = next(iter(data()))
    # labels are dropped from calibration / inference inputs; the model still matches fp32
    assert (logits(q.model, batch) - logits(model, batch)).abs().max() < 0.05
    summary = json.loads(summary_path.read_text())
    assert summary["quantized_modules"] == N_INT8
    assert summary["quantization_path"] == "eager"
    assert summary["fx_fallback_reason"]

    q.save(tmp_path / "int8")
    loaded = load(tmp_path / "int8", tiny_bert())
    assert torch.equal(logits(loaded, batch), logits(q.model, batch))


def test_dynamic_bert_round_trips(tmp_path):
    model = tiny_bert()
    q = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))
    assert len(int8_names(q.model)) == N_INT8
    q.save(tmp_path / "dyn")
    loaded = load(tmp_path / "dyn", tiny_bert())
    batch = next(iter(data()))
    assert torch.equal(logits(loaded, batch), logits(q.model, batch))


def test_tuning_a_transformer_keeps_the_classifier_in_fp32(tmp_path):
    """The fake evaluation punishes an int8 classifier; tuning finds it (last op first)."""
    model = tiny_bert()

    def evaluate(candidate: nn.Module) -> float:
        if candidate is model:
            return 0.9
        return 0.5 if "classifier" in int8_names(candidate) else 0.9

    conf = PostTrainingQuantConfig(
        approach="auto",
        accuracy_criterion=AccuracyCriterion(tolerable_loss=0.01),
        tuning_criterion=TuningCriterion(max_trials=5),
    )
    q = quantization.fit(model, conf, calib_dataloader=data(), eval_func=evaluate)
    assert q is not None
    names = int8_names(q.model)
    assert "classifier" not in names and len(names) == N_INT8 - 1
    # static trial, dynamic trial (auto), then the classifier alone in fp32 on the static model
    assert q.q_config["approach"] == "post_training_static_quant"
    q.save(tmp_path / "tuned")
    loaded = load(tmp_path / "tuned", tiny_bert())
    assert type(loaded.classifier) is nn.Linear
    batch = next(iter(data()))
    assert torch.equal(logits(loaded, batch), logits(q.model, batch))
