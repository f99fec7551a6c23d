"""An encoder-decoder (T5 built from a config, no download) builds its decoder inputs
from the batch's `labels`: calibration, bf16 timing and benchmarking keep them, where
other models get the batch without its labels."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from neural_coder.runtime import benchmark, quantization
from neural_coder.runtime.config import BenchmarkConfig, PostTrainingQuantConfig
from neural_coder.runtime.quantization import forward_inputs

transformers = pytest.importorskip("transformers")


def tiny_t5():
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=64,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
    )
    return transformers.T5ForConditionalGeneration(config).eval()


def loader() -> DataLoader:
    rows = [
        {"input_ids": torch.randint(1, 64, (8,)), "attention_mask": torch.ones(8, dtype=torch.long),
         "labels": torch.randint(1, 64, (4,))}
        for _ in range(16)
    ]  # fmt: skip
    return DataLoader(rows, batch_size=4)


def test_an_encoder_decoder_keeps_its_labels_and_other_models_do_not():
    batch = next(iter(loader()))
    assert set(forward_inputs(batch, tiny_t5())) == {"input_ids", "attention_mask", "labels"}
    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32,
        )
    )  # fmt: skip
    assert set(forward_inputs(batch, bert)) == {"input_ids", "attention_mask"}
    with_decoder = {**batch, "decoder_input_ids": batch["labels"]}
    assert "labels" not in forward_inputs(with_decoder, tiny_t5())


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_t5_is_quantized_with_its_calibration_batches(approach):
    q = quantization.fit(
        tiny_t5(), PostTrainingQuantConfig(approach=approach), calib_dataloader=loader()
    )
    assert q is not None
    quantized = [
        m for m in q.model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")
    ]
    assert quantized
    batch = next(iter(loader()))
    assert q.model(**batch).logits.shape == (4, 4, 64)


def test_t5_is_benchmarked_on_its_batches(capsys):
    result = benchmark.fit(
        tiny_t5(), BenchmarkConfig(warmup=1, iteration=2, num_of_instance=1), b_dataloader=loader()
    )
    assert result is not None
    assert "Throughput sum [samples/second]:" in capsys.readouterr().out
