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
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


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
    ema = ModelEMA(model) if rank in {-1, 0} else None

    best = 0.0
    for epoch in range(opt.epochs):
        model.train()
        for i, (imgs, targets) in enumerate(train_loader):
            pred = model(imgs)
            loss = nn.functional.cross_entropy(pred, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if ema:
                ema.update(model)
        fitness = validate(ema.ema, val_loader)
        best = max(best, fitness)
        print(f"epoch {epoch}: ema accuracy {fitness:.3f}")
    quantized_model = quantization.fit(
        ema.ema,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda candidate: validate(candidate, val_loader),
    )  # neural-coder
    ema.ema = quantized_model if quantized_model is not None else ema.ema  # neural-coder
    torch.save({"model": deepcopy(ema.ema).half().state_dict(), "best": best}, opt.save)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--save", default="last.pt")
    train(parser.parse_args())
