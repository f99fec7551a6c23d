"""QAT on a CUDA model: fake-quant trains on the GPU, the int8 model comes back on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from neural_coder.runtime.quant import QuantSpec, get_backend

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@pytest.mark.parametrize("path", ["fx", "eager"])
def test_qat_on_cuda_converts_to_a_cpu_int8_model(path: str):
    torch.manual_seed(0)
    model = Net().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    prepared = get_backend().prepare_qat(model, QuantSpec(path=path))
    qat = prepared.model
    assert {id(p) for p in qat.parameters()} == {
        id(p) for g in opt.param_groups for p in g["params"]
    }
    assert all(p.is_cuda for p in qat.parameters())
    assert all(b.is_cuda for b in qat.buffers())  # observers live beside their module
    xs, ys = torch.randn(16, 3, 8, 8, device="cuda"), torch.randint(0, 4, (16,), device="cuda")
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(qat(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        fake_quant = qat.eval()(x.cuda()).cpu()
        int8 = get_backend().convert(prepared)
        out = int8(x)
    assert get_backend().count_quantized_modules(int8) == 2
    assert all(not b.is_cuda for b in int8.buffers())
    assert (out - fake_quant).abs().max() < 0.1 * fake_quant.abs().max()
