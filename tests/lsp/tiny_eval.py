"""Evaluate a tiny classifier on synthetic data (the Auto command's sample: it runs in
a couple of seconds per candidate). The labels are what the model predicts, so fp32
scores 1.0."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
inputs = torch.randn(256, 32)
with torch.no_grad():
    labels = model(inputs).argmax(1)
loader = DataLoader(TensorDataset(inputs, labels), batch_size=32)


def evaluate(net, batches):
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            correct += (net(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


print(f"accuracy: {evaluate(model, loader):.3f}")
