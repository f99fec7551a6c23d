"""A detector-style training script that keeps an exponential moving average (EMA) of
its model, as YOLOv5, timm and DeiT scripts do. The average is updated after every
optimizer step; it is what the script evaluates each epoch and saves at the end.

Synthetic data (a tiny MLP standing in for the network) keeps it self-contained.
"""

import argparse
import math
import os
from copy import deepcopy

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression


class ModelEMA:
    """Keeps a moving average of everything in the model's state dict."""

    def __init__(self, model, decay=0.999, tau=20, updates=0):
        self.ema = deepcopy(model).eval()
        self.updates = updates
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))  # warms up
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        self.updates += 1
        d = self.decay(self.updates)
        msd = model.state_dict()
        with torch.no_grad():
            for k, v in self.ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v *= d
                    v += (1 - d) * msd[k].detach()


class Net(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.stem = nn.Linear(16, width)
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def validate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def train(opt):
    torch.manual_seed(0)
    x = torch.randn(384, 16)
    y = (x[:, :4].argmax(1)).long()
    train_loader = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=32)

    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    rank = int(os.environ.get("RANK", -1))
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    ema = ModelEMA(model) if rank in {-1, 0} else None
    compression_manager.track_copy(ema)  # neural-coder

    best = 0.0
    for epoch in range(opt.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for i, (imgs, targets) in enumerate(train_loader):
            compression_manager.callbacks.on_step_begin(i)  # neural-coder
            pred = model(imgs)
            loss = nn.functional.cross_entropy(pred, targets)
            optimizer.zero_grad()
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            if ema:
                ema.update(model)
            compression_manager.callbacks.on_step_end()  # neural-coder
        fitness = validate(ema.ema, val_loader)
        best = max(best, fitness)
        print(f"epoch {epoch}: ema accuracy {fitness:.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save({"model": deepcopy(ema.ema).half().state_dict(), "best": best}, opt.save)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--save", default="last.pt")
    train(parser.parse_args())
