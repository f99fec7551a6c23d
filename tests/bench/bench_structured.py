"""Inference wall-clock of a channel-pruned CNN: shrunk (channels removed) against masked.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_structured.py [--quick]

Each CNN is trained a few steps with `WeightPruningConfig(pattern="1xchannel",
target_sparsity=0.5, pruning_scope="local", shrink=True)`. A deep copy taken before
`on_train_end` is the masked model (half the filters zero, dense storage); after
`on_train_end` the model is the shrunk one. Both run eval-mode forwards on the same
batch (32 images, 3x32x32), one thread, in adjacent blocks in one process; the
figure is the median over block pairs of masked / shrunk wall-clock time (> 1: the
shrunk model is faster). The outputs are compared too.

* "plain": conv-bn-relu stacks (VGG style): every pruned filter leaves the model.
* "residual": ResNet basic blocks: a channel of the residual stream leaves only when
  every layer writing it is pruned there; with shrink=True the writers are ranked
  together from the first pruning step after the first forward (start_step=1).
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

import torch
from torch import nn

from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.pruning.shrink import count_parameters
from neural_coder.runtime.training import prepare_compression

torch.set_num_threads(1)
QUICK = "--quick" in sys.argv
BLOCK, BLOCKS = (5, 5) if QUICK else (10, 15)


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class PlainCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(3, 32), *conv_bn(32, 64), nn.MaxPool2d(2),
            *conv_bn(64, 128), *conv_bn(128, 128), nn.MaxPool2d(2),
            *conv_bn(128, 256), *conv_bn(256, 256),
        )  # fmt: skip
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class Basic(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn(c, c), nn.Conv2d(c, c, 3, padding=1, bias=False))
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn(self.body(x)))


class ResidualCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 64))
        self.blocks = nn.Sequential(Basic(64), Basic(64), nn.MaxPool2d(2), Basic(64), Basic(64))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def prune_and_shrink(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    """(masked copy, shrunk model) after a short pruning run."""
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1xchannel",
        pruning_type="magnitude",
        pruning_scope="local",
        start_step=1,
        end_step=3,
        shrink=True,
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    wrapped = cm.model
    optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.01)
    y = torch.randint(0, 10, (x.shape[0],))
    for step in range(4):
        cm.callbacks.on_step_begin(step)
        nn.functional.cross_entropy(wrapped(x), y).backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        optimizer.zero_grad()
    masked = copy.deepcopy(model).eval()
    cm.callbacks.on_train_end()
    return masked, model.eval()


def timed(model: nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(BLOCK):
            model(x)
        return (time.perf_counter() - start) / BLOCK


def bench(name: str, model: nn.Module) -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 3, 32, 32)
    masked, shrunk = prune_and_shrink(model, x)
    with torch.inference_mode():
        diff = float((masked(x) - shrunk(x)).abs().max())
        timed(masked, x), timed(shrunk, x)  # warm-up
    ratios, masked_t, shrunk_t = [], [], []
    for _ in range(BLOCKS):
        a, b = timed(masked, x), timed(shrunk, x)
        masked_t.append(a)
        shrunk_t.append(b)
        ratios.append(a / b)
    print(
        f"{name:9s} params {count_parameters(masked):>8d} -> {count_parameters(shrunk):>8d}  "
        f"forward {1000 * statistics.median(masked_t):7.2f} ms masked, "
        f"{1000 * statistics.median(shrunk_t):7.2f} ms shrunk  "
        f"speed-up x{statistics.median(ratios):.2f}  max |diff| {diff:.1e}"
    )


if __name__ == "__main__":
    print(f"batch 32x3x32x32, 1 thread, median of {BLOCKS} block pairs of {BLOCK} forwards")
    bench("plain", PlainCNN())
    bench("residual", ResidualCNN())
