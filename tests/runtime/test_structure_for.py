"""A script that saves a state dict itself (`torch.save(net.state_dict(), PATH)`) and
loads it into a fresh float instance: an int8 model's state dict carries its recipe in
its metadata, and `structure_for` rebuilds the int8 structure from the float instance;
a fake-quant checkpoint saved while QAT trained carries the QAT recipe, and
`structure_for` converts it to the int8 model QAT would have given. The script's own
`load_state_dict` then loads the state dict returned (so does `load` from that state)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from neural_coder.runtime import (
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    load,
    prepare_compression,
    structure_for,
)
from neural_coder.runtime.quantization import fit


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc1 = nn.Linear(4 * 6 * 6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


X = torch.randn(8, 3, 8, 8)


def saved_and_loaded(obj: object) -> object:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def qat_run() -> tuple[nn.Module, dict]:
    """The int8 model QAT ends with, and the fake-quant state dict of its last step."""
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    for _ in range(2):
        optimizer.zero_grad()
        cm.model(X).sum().backward()
        optimizer.step()
    fake_quant = saved_and_loaded(cm.model.model.state_dict())  # the best epoch's save
    cm.callbacks.on_train_end()
    return cm.model.model, fake_quant


def qat_model() -> nn.Module:
    return qat_run()[0]


def static_model() -> nn.Module:
    data = torch.utils.data.TensorDataset(X, torch.zeros(8))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    return fit(Net(), PostTrainingQuantConfig(), calib_dataloader=loader).model


def dynamic_model() -> nn.Module:
    return fit(Net(), PostTrainingQuantConfig(approach="dynamic")).model


@pytest.mark.parametrize("make", [qat_model, static_model, dynamic_model])
def test_a_fresh_float_instance_loads_the_int8_state_dict_the_script_saved(make):
    int8 = make()
    state = saved_and_loaded({"model": int8.state_dict(), "epoch": 2})["model"]
    fresh = Net()
    rebuilt, to_load = structure_for(state, fresh)
    assert rebuilt is not fresh and to_load is state
    rebuilt.load_state_dict(to_load)
    assert torch.allclose(rebuilt(X), int8(X))
    assert any("quantized" in type(m).__module__ for m in rebuilt.modules())
    assert torch.allclose(load(state, Net())(X), int8(X))


def test_a_float_state_dict_leaves_the_instance_as_it_is():
    trained = Net()
    state = saved_and_loaded(trained.state_dict())
    fresh = Net()
    assert structure_for(state, fresh) == (fresh, state)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(X), trained(X))


def test_the_int8_model_still_loads_its_own_state_dict():
    int8 = dynamic_model()
    int8.load_state_dict(saved_and_loaded(int8.state_dict()))


def test_a_fake_quant_checkpoint_saved_while_qat_trained_gives_the_int8_model():
    int8, fake_quant = qat_run()
    fresh = Net()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    converted, to_load = structure_for(fake_quant, fresh)
    assert any("quantized" in type(m).__module__ for m in converted.modules())
    converted.load_state_dict(to_load)  # the script's own load: the same weights again
    assert torch.allclose(converted(X), int8(X))
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())
    assert torch.allclose(load(fake_quant, Net())(X), int8(X))
