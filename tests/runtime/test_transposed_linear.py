"""transformers' `Conv1D` (GPT-2's attention and MLP layers: a Linear whose weight is
stored transposed) is quantized like an `nn.Linear`: QAT keeps training the original
Parameter and converts it to an int8 Linear; static and dynamic PTQ quantize it; the
int8 model saved by `fit` loads back into a float GPT-2. Before, all three left every
Conv1D in float (a GPT-2 QAT run quantized nothing)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig, QuantizationAwareTrainingConfig
from neural_coder.runtime.loading import load
from neural_coder.runtime.quant import modules as qm
from neural_coder.runtime.training import prepare_compression

CONFIG = GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=32)
IDS = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(0))
CONV1D_NAMES = {
    "transformer.h.0.attn.c_attn",
    "transformer.h.0.attn.c_proj",
    "transformer.h.0.mlp.c_fc",
    "transformer.h.0.mlp.c_proj",
}


def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(CONFIG).eval()


def int8_linear_names(model: torch.nn.Module) -> set[str]:
    return {n for n, m in model.named_modules() if type(m).__name__ == "QuantizedLinear"} | {
        n for n, m in model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    }


def test_conv1d_is_recognised_by_shape_not_by_import():
    layer = Conv1D(nf=6, nx=4)
    assert qm.supports_eager(layer) and qm.is_transposed_linear(layer)
    linear = qm.linear_from_transposed(layer)
    x = torch.randn(3, 4)
    assert torch.allclose(linear(x), layer(x), atol=1e-6)


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_ptq_quantizes_every_conv1d_and_reloads(tmp_path, approach):
    model = gpt2()
    reference = model(IDS).logits
    conf = PostTrainingQuantConfig(approach=approach)
    calib = [{"input_ids": IDS}] if approach == "static" else None
    q = quantization.fit(model, conf, calib_dataloader=calib)
    assert CONV1D_NAMES <= int8_linear_names(q.model)
    out = q.model(IDS).logits
    assert (out - reference).abs().max() < 0.05
    q.save(str(tmp_path))
    reloaded = load(str(tmp_path), gpt2())
    assert torch.equal(reloaded(IDS).logits, out)


def test_qat_trains_the_original_conv1d_weight_then_converts_it():
    model = gpt2().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    weight = model.transformer.h[0].mlp.c_fc.weight
    before = weight.detach().clone()
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    for _ in range(2):
        cm.model(IDS, labels=IDS).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert not torch.equal(weight, before)  # the optimizer built before still trains it
    cm.callbacks.on_train_end()
    final = getattr(cm.model, "model", cm.model)
    assert CONV1D_NAMES <= int8_linear_names(final)
    assert final(IDS).logits.shape == (4, 12, 50)
