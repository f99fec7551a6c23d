"""`prepare_compression(model, QuantizationAwareTrainingConfig(), in_place=True)`: the
module given is prepared and converted itself, so code that holds it (a trainer class
built around it) has the int8 model after `on_train_end`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import (
    ConfigValueError,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.int8_device import kept_on_cpu
from neural_coder.runtime.training import prepare_compression


def _train(held: nn.Module, confs, steps: int = 8, **kwargs) -> object:
    torch.manual_seed(0)
    optimizer = torch.optim.SGD(held.parameters(), lr=0.1, momentum=0.9)
    cm = prepare_compression(held, confs, **kwargs)
    cm.callbacks.on_train_begin()
    for step in range(steps):
        cm.callbacks.on_step_begin(step)
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        loss = nn.functional.cross_entropy(held(x), y)  # the held module, not cm.model
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
    cm.callbacks.on_train_end()
    return cm


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def test_the_held_module_trains_with_fake_quant_and_ends_int8():
    held = _net()
    cm = _train(held, QuantizationAwareTrainingConfig(), in_place=True)
    assert cm.model.model is held
    assert cm.summary["quantized_modules"] == 2
    assert cm.summary["qat_path"] == "eager"
    state = held.state_dict()
    assert any(key.endswith("_packed_params._packed_params") for key in state), list(state)
    assert kept_on_cpu(held)  # called directly, it bridges inputs from another device
    assert held(torch.randn(2, 6)).shape == (2, 3)


def test_without_in_place_the_held_module_stays_float():
    held = _net()
    cm = _train(held, QuantizationAwareTrainingConfig())
    assert cm.summary["quantized_modules"] == 2
    assert not any("_packed_params" in key for key in held.state_dict())


def test_pruning_and_qat_in_place():
    held = _net()
    pruning = WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=4)
    cm = _train(held, [pruning, QuantizationAwareTrainingConfig()], in_place=True)
    assert cm.summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert cm.summary["quantized_modules"] == 2
    assert cm.model.model is held


def test_a_bare_layer_cannot_be_converted_in_place():
    with pytest.raises(TypeError, match="the model is itself a Linear"):
        _train(nn.Linear(6, 3), QuantizationAwareTrainingConfig(), in_place=True)


def test_in_place_must_be_a_bool():
    with pytest.raises(ConfigValueError, match="in_place"):
        prepare_compression(_net(), QuantizationAwareTrainingConfig(), in_place="yes")
