"""State dicts of compressed models through safetensors (`tensors_only` before
`save_file`, `state_dict_from_tensors` after `load_file`, or `structure_for`): int8 and
QAT models' state dicts hold quantized tensors, tuples, dtypes and shared observer
buffers, which safetensors refuses, and a recipe in metadata, which it drops."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from neural_coder.runtime import (
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    prepare_compression,
    state_dict_from_tensors,
    structure_for,
    tensors_only,
)
from neural_coder.runtime.plain_tensors import ENTRY
from neural_coder.runtime.quantization import fit


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.mean(dim=(2, 3)))


X = torch.randn(8, 3, 8, 8)


def through_safetensors(state, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(tensors_only(state), path)
    return load_file(path)


def test_a_float_state_dict_is_saved_as_it_is(tmp_path):
    state = Net().state_dict()
    assert tensors_only(state) is state
    loaded = through_safetensors(state, tmp_path)
    assert ENTRY not in loaded and state_dict_from_tensors(loaded) is loaded


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_an_int8_state_dict_goes_through_safetensors_and_rebuilds(tmp_path, approach):
    int8 = fit(Net().eval(), PostTrainingQuantConfig(approach=approach), calib_dataloader=[(X, 0)])
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        save_file(int8.model.state_dict(), tmp_path / "plain.safetensors")
    loaded = through_safetensors(int8.model.state_dict(), tmp_path)
    fresh, state = structure_for(loaded, Net().eval())
    fresh.load_state_dict(state)
    assert torch.equal(fresh(X), int8(X))
    int8.model.load_state_dict(state_dict_from_tensors(loaded))  # in place, strict


def test_a_qat_checkpoint_with_shared_observers_goes_through_and_converts(tmp_path):
    cm = prepare_compression(Net(), QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    optimizer = torch.optim.SGD(cm.model.parameters(), lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        cm.model(X).sum().backward()
        optimizer.step()
    fake_quant = cm.model.model.state_dict()
    with pytest.raises(RuntimeError, match="share memory"):
        save_file(fake_quant, tmp_path / "plain.safetensors")
    loaded = through_safetensors(fake_quant, tmp_path)
    cm.model.model.load_state_dict(state_dict_from_tensors(loaded))  # the best epoch, reloaded
    cm.callbacks.on_train_end()
    converted, state = structure_for(loaded, Net())
    converted.load_state_dict(state)
    cm.model.eval()
    assert torch.allclose(converted(X), cm.model(X))


def test_an_entry_that_is_no_tensor_is_named():
    with pytest.raises(TypeError, match=r"'extra' \(object\) cannot be stored"):
        tensors_only({"w": torch.ones(2), "extra": object()})


def test_accelerate_save_model_of_an_int8_model_through_the_module_view(tmp_path):
    from accelerate import Accelerator

    int8 = fit(Net().eval(), PostTrainingQuantConfig(approach="dynamic"))
    accelerator = Accelerator(cpu=True)
    with pytest.raises(AttributeError):
        accelerator.save_model(int8, tmp_path / "plain")
    accelerator.save_model(tensors_only(int8), tmp_path / "final")
    fresh, state = structure_for(load_file(tmp_path / "final" / "model.safetensors"), Net())
    fresh.load_state_dict(state)
    assert torch.equal(fresh(X), int8(X))
