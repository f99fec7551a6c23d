"""Batches of a model that takes several inputs (`(images_1, images_2, target)` for
`forward(self, input1, input2)`, a siamese net): calibration and bf16 timing feed it the
inputs its forward requires, and the label stays out."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import mix_precision, quantization
from neural_coder.runtime.config import MixedPrecisionConfig, PostTrainingQuantConfig
from neural_coder.runtime.quantization import forward_inputs


class PairNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(32, 1)

    def forward(self, left, right):
        return self.head(torch.cat([self.embed(left), self.embed(right)], dim=1))


def pairs() -> DataLoader:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(32, 8), torch.randn(32, 8), torch.rand(32))
    return DataLoader(data, batch_size=8)


def test_the_inputs_are_what_the_forward_requires():
    batch = next(iter(pairs()))
    inputs = forward_inputs(batch, PairNet())
    assert isinstance(inputs, tuple) and len(inputs) == 2
    assert inputs[0] is batch[0] and inputs[1] is batch[1]
    # one required input: the first item, the rest are labels (the usual convention)
    assert forward_inputs(batch, nn.Linear(8, 1)) is batch[0]


def test_a_two_input_model_is_calibrated_and_quantized():
    q = quantization.fit(
        PairNet(), PostTrainingQuantConfig(approach="static"), calib_dataloader=pairs()
    )
    assert q is not None
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in q.model.modules())


def test_bf16_measures_a_two_input_model_without_failing():
    # the measurement may keep fp32 (no gain on this CPU); it must not raise
    mix_precision.fit(PairNet(), MixedPrecisionConfig(), calib_dataloader=pairs())
