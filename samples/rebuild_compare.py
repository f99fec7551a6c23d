"""Time a plain training run of a small classifier, keep it, then time a fresh one again."""

import os
import time

import torch
from torch import nn

STEPS = int(os.environ.get("STEPS", "20"))


def make_batch(n=32, generator=None):
    x = torch.randn(n, 8, generator=generator)
    return x, (x.sum(dim=1) > 0).long()


def build_net():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))


def accuracy(net):
    x, y = make_batch(512, torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (net(x).argmax(dim=1) == y).float().mean().item()


def train(mod, data):
    opt.zero_grad(True)
    loss = nn.functional.cross_entropy(mod(data[0]), data[1])
    loss.backward()
    opt.step()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


torch.manual_seed(0)
net = build_net()
opt = torch.optim.SGD(net.parameters(), lr=0.2)
first_times = []
for i in range(STEPS):
    batch = make_batch()
    _, seconds = timed(lambda b=batch: train(net, b))
    first_times.append(seconds)
print(f"trained accuracy: {accuracy(net):.4f}")
torch.save(net.state_dict(), "net.pt")

# a fresh model for the second timing run: its weights start from scratch
net = build_net()
opt = torch.optim.SGD(net.parameters(), lr=0.2)
train_compiled = torch.compile(train, disable=os.environ.get("COMPILE") != "1")
second_times = []
for i in range(STEPS):
    batch = make_batch()
    _, seconds = timed(lambda b=batch: train_compiled(net, b))
    second_times.append(seconds)
print(f"median step: {sorted(first_times)[STEPS // 2]:.6f}s / {sorted(second_times)[STEPS // 2]:.6f}s")
