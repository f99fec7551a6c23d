"""A script that already compresses its model with a library's API (written by its author,
no neural-coder marker) is never compressed a second time: the same approach is a no-op,
another one is refused naming the call, INC 1.x code points at `migrate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

LOOP = """\
import torch
from transformers import AutoModelForSequenceClassification
{imports}

def main():
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
    loader = torch.utils.data.DataLoader(torch.randint(0, 9, (8, 4)), batch_size=2)
    optimizer = torch.optim.AdamW(model.parameters())
{setup}
    for epoch in range(2):
        for batch in loader:
            loss = model(input_ids=batch, labels=batch[:, 0]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
{after}
"""

INC2_PRUNING = LOOP.format(
    imports="from neural_compressor.training import WeightPruningConfig, prepare_compression",
    setup="    cm = prepare_compression(model, WeightPruningConfig(target_sparsity=0.8))\n"
    "    cm.callbacks.on_train_begin()",
    after="    cm.callbacks.on_train_end()",
)
INC23_PRUNING = LOOP.format(
    imports="from neural_compressor.training import WeightPruningConfig, prepare_pruning",
    setup="    model = prepare_pruning(model, WeightPruningConfig(target_sparsity=0.8), optimizer)",
    after="",
)
INC3_QUANT = LOOP.format(
    imports="from neural_compressor.torch.quantization import StaticQuantConfig, convert, prepare",
    setup="",
    after="    model = convert(prepare(model, StaticQuantConfig()))",
)
INC1_PRUNING = LOOP.format(
    imports="from neural_compressor.experimental import Pruning",
    setup='    prune = Pruning("conf.yaml")\n    prune.model = model',
    after="    model = prune.fit()",
)
MCR_PRUNING = LOOP.format(
    imports="from model_compression_research import IterativePruningConfig, "
    "IterativePruningScheduler",
    setup='    scheduler = IterativePruningScheduler(model, IterativePruningConfig.from_pretrained("p"))',
    after="    scheduler.remove_pruning()",
)

TRAINER = """\
from optimum.intel import INCTrainer
from neural_compressor import QuantizationAwareTrainingConfig
from transformers import AutoModelForSequenceClassification, TrainingArguments

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
trainer = INCTrainer(
    model=model, args=TrainingArguments("out"), train_dataset=data, {config}
)
trainer.train()
"""


def optimize(text: str, approach: str):
    options = build_options(approach, None, {}, {})
    return rewrite_source(Path("script.py"), text, options)


@pytest.mark.parametrize(
    ("text", "api", "call"),
    [
        (INC2_PRUNING, "Intel Neural Compressor 2.x", "prepare_compression at line 9"),
        (INC23_PRUNING, "Intel Neural Compressor 2.x", "prepare_pruning at line 9"),
        (MCR_PRUNING, "Model Compression Research", "IterativePruningScheduler at line 9"),
        (
            TRAINER.format(config="quantization_config=QuantizationAwareTrainingConfig()"),
            "optimum-intel",
            "INCTrainer at line 6",
        ),
    ],
)
def test_another_approach_is_refused_naming_the_scripts_own_call(text, api, call):
    with pytest.raises(NeuralCoderError) as caught:
        optimize(text, "qat" if "Pruning" in text or "pruning" in text else "pruning")
    message, hint = caught.value.message, caught.value.hint or ""
    assert api in message and call in message and "in its own code" in message
    assert "revert" not in hint and "remove its compression code" in hint


def test_an_onnx_runtime_quantizer_is_found():
    text = (
        "from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer\n"
        "from optimum.onnxruntime.configuration import AutoQuantizationConfig\n"
        'model = ORTModelForSequenceClassification.from_pretrained("m", export=True)\n'
        "quantizer = ORTQuantizer.from_pretrained(model)\n"
        'quantizer.quantize(save_dir="q", quantization_config=AutoQuantizationConfig.avx2(False))\n'
    )
    with pytest.raises(NeuralCoderError, match=r"with optimum \(ORTQuantizer.from_pretrained at"):
        optimize(text, "ptq-dynamic")


def test_the_same_approach_is_a_no_op():
    text, report = optimize(INC2_PRUNING, "pruning")
    assert report.status is Status.UNCHANGED and text == INC2_PRUNING
    assert "does pruning itself with Intel Neural Compressor 2.x" in report.message


def test_inc3_quantization_is_found():
    with pytest.raises(NeuralCoderError, match=r"Neural Compressor 3.x \(convert at line 16\)"):
        optimize(INC3_QUANT, "pruning")


def test_inc_1x_code_points_at_migrate():
    for approach in ("pruning", "qat", "ptq-static"):
        with pytest.raises(NeuralCoderError) as caught:
            optimize(INC1_PRUNING, approach)
        assert "Intel Neural Compressor 1.x (Pruning at line 9)" in caught.value.message
        assert "neural-coder migrate script.py" in (caught.value.hint or "")


def test_an_optimum_trainer_given_no_config_is_a_plain_trainer():
    text = TRAINER.format(config="quantization_config=None")
    rewritten, report = optimize(text, "pruning")
    assert report.status is Status.TRANSFORMED and "CompressionCallback" in rewritten
