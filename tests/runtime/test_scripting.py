"""`torch.jit.script` of a compressed model (a deployment step after training): the
`Model` wrapper scripts its inner module, and a bridged int8 module (`keep_on_cpu`)
scripts a copy without the bridge's Python hooks, which TorchScript cannot compile; the
model itself stays bridged."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from neural_coder.runtime import PostTrainingQuantConfig, load
from neural_coder.runtime.int8_device import kept_on_cpu
from neural_coder.runtime.quantization import fit


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


X = torch.randn(4, 1, 8, 8)


def scripted_round_trip(model: nn.Module) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_the_fit_result_and_the_loaded_int8_model_script(tmp_path, approach):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, torch.zeros(4)))
    q = fit(Net().eval(), PostTrainingQuantConfig(approach=approach), calib_dataloader=data)
    scripted = scripted_round_trip(q)
    assert torch.allclose(scripted(X), q(X))
    q.save(tmp_path)
    loaded = load(tmp_path, Net())
    assert kept_on_cpu(loaded)
    assert torch.allclose(scripted_round_trip(loaded)(X), loaded(X))
    assert kept_on_cpu(loaded)  # the model itself keeps its bridge
