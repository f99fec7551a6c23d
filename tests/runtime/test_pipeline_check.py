"""`transformers.pipeline(task, model=q_model)`: the pipeline's supported-model check reads
the class wrapped in the runtime's `Model` (it used to log "The model 'Model' is not
supported"), and the pipeline runs the int8 model. Tiny BERT from a config, tokenizer from
a local vocab: nothing is downloaded."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
    pipeline,
)

from neural_coder.runtime import quantization  # noqa: E402
from neural_coder.runtime.config import PostTrainingQuantConfig  # noqa: E402
from neural_coder.runtime.model import Model  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "plot"]
CONFIG = BertConfig(
    vocab_size=len(VOCAB),
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    num_labels=2,
)


@pytest.fixture
def tokenizer(tmp_path: Path) -> BertTokenizer:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    return BertTokenizer(str(vocab))


@pytest.fixture
def transformers_log() -> Iterator[list[str]]:
    """What transformers logs (its loggers do not propagate to the root logger)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def test_a_pipeline_over_the_int8_model_checks_the_wrapped_class(tokenizer, transformers_log):
    torch.manual_seed(0)
    model = BertForSequenceClassification(CONFIG).eval()
    q_model = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))
    assert isinstance(q_model, Model)
    int8 = [m for m in q_model.model.modules() if type(m).__module__.startswith("torch.ao")]
    assert int8, "the fit made no int8 modules"
    inputs = tokenizer("good film", return_tensors="pt")
    with torch.no_grad():
        expected = q_model(**inputs).logits.softmax(-1).max().item()

    classify = pipeline("text-classification", model=q_model, tokenizer=tokenizer)
    result = classify("good film")

    assert not [m for m in transformers_log if "is not supported" in m], transformers_log
    assert classify.model is q_model  # the pipeline runs the int8 model it was given
    assert result[0]["score"] == pytest.approx(expected, abs=1e-5)


def test_a_wrapped_model_the_task_does_not_support_is_still_named(tokenizer, transformers_log):
    base = Model(BertModel(CONFIG).eval())
    pipeline("text-classification", model=base, tokenizer=tokenizer)
    assert any("The model 'BertModel' is not supported" in m for m in transformers_log)
