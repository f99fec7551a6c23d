"""A QAT run resumed from a checkpoint: once the manager has prepared the model,
`cm.model.load_state_dict` takes the fake-quant state dict the run saved (its observers
go on from there) and a float one (loaded into the float module whose weights the
prepared one shares)."""

from __future__ import annotations

import torch
from torch import nn

from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)
    )


def prepared(model: nn.Module):
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    cm.model(torch.randn(2, 3, 8, 8))  # the observers see a batch
    return cm


def test_the_fake_quant_state_saved_mid_training_loads_back_with_its_observers():
    saved = prepared(net()).model.state_dict()
    assert any("activation_post_process" in k for k in saved)
    resumed = prepared(net()).model
    resumed.load_state_dict(saved)
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_float_checkpoint_loads_into_the_prepared_model():
    float_model = net()
    with torch.no_grad():
        float_model[4].weight.fill_(0.5)
        float_model[1].running_mean.fill_(0.25)
    cm = prepared(net())
    result = cm.model.load_state_dict(float_model.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    inner = dict(cm.model.named_parameters())
    assert all(
        torch.equal(p, torch.full_like(p, 0.5)) for n, p in inner.items() if n.endswith("4.weight")
    )
    assert torch.equal(cm.model.fp32_model[1].running_mean, torch.full((4,), 0.25))
    cm.callbacks.on_train_end()
    assert cm.summary["quantized_modules"] == 2
