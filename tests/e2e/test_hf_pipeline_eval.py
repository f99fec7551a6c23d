"""An inference script whose model only a transformers pipeline builds (`pipeline(task,
model=folder)`): dynamic PTQ quantizes `classifier.model`, and the pipeline classifies
with the int8 module."""

from __future__ import annotations

import pytest
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "hf_pipeline_eval.py"
WORDS = "the a movie film was is good bad great terrible not very i loved hated it plot acting"


def test_the_pipeline_classifies_with_the_int8_model(tmp_path):
    folder = tmp_path / "sentiment-model"
    folder.mkdir()
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS.split()]))
    config = BertConfig(
        vocab_size=len(WORDS.split()) + 5, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizerFast(str(vocab)).save_pretrained(folder)
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    with script.open("a") as f:  # what the pipeline classified with
        f.write(
            "print('query:', type(classifier.model.bert.encoder.layer[0].attention.self.query))\n"
        )
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0, summary
    assert "accuracy:" in run.stdout
    assert "torch.ao.nn.quantized.dynamic" in run.stdout, run.stdout
