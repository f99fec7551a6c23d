"""Pruning on a CUDA model: masks and scores live beside the weights, and follow a model
moved to the GPU after `prepare_compression`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.pruning import PruningCompressor
from neural_coder.runtime.training import prepare_compression

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc1(x)))


def _train(model: nn.Module, cm, steps: int, device: str) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(8, 4, 6, 6, device=device)
    y = torch.randint(0, 4, (8,), device=device)
    cm.callbacks.on_train_begin()
    wrapped = cm.model
    for i in range(steps):
        cm.callbacks.on_step_begin(i)
        loss = nn.functional.cross_entropy(wrapped(x), y)
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
    cm.callbacks.on_train_end()


@pytest.mark.parametrize("ptype", ["snip_momentum", "magnitude"])
@pytest.mark.parametrize("pattern", ["4x1", "2:4"])
def test_pruning_a_cuda_model(ptype: str, pattern: str) -> None:
    torch.manual_seed(0)
    model = Net().cuda()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern=pattern, pruning_type=ptype, start_step=1, end_step=6
    )
    cm = prepare_compression(model, conf)
    _train(model, cm, 10, "cuda")
    c = cm.compressors[0]
    assert isinstance(c, PruningCompressor)
    for name, mask in c.pruners[0].masks.items():
        assert mask.is_cuda, name
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True
    assert cm.summary["sparsity"] == pytest.approx(0.5, abs=4 / (8 * 36 + 32 * 8))


def test_masks_follow_a_model_moved_to_cuda_after_prepare() -> None:
    torch.manual_seed(0)
    model = Net()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=0
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_begin(0)  # masks made on the CPU
    model.cuda()
    _train(model, cm, 4, "cuda")
    c = cm.compressors[0]
    assert all(m.is_cuda for m in c._apply_masks)
    assert cm.summary is not None and cm.summary["pruning_target_reached"] is True
    assert (model.fc1.weight == 0).float().mean().item() > 0.0
