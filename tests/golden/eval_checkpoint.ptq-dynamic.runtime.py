"""Evaluate a trained classifier from a training checkpoint.

The checkpoint is a dict (weights, epoch, the config it was trained with); the
model is rebuilt from the config, given the weights, moved to the device and
optionally compiled. A loss object and an average meter track the test loss.
"""

import argparse
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


@dataclass
class ModelConfig:
    in_features: int = 32
    hidden: int = 64
    num_classes: int = 5


class MLPClassifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(cfg.in_features, cfg.hidden), nn.ReLU())
        self.head = nn.Linear(cfg.hidden, cfg.num_classes)

    def forward(self, x):
        return self.head(self.body(x))


class AverageMeter:
    """Running average of a value."""

    def __init__(self):
        self.sum = 0.0
        self.count = 0

    def update(self, value, n=1):
        self.sum += value * n
        self.count += n

    @property
    def avg(self):
        return self.sum / max(self.count, 1)


def evaluate(model, loader, criterion, device):
    model.eval()
    losses = AverageMeter()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            losses.update(criterion(logits, y).item(), x.size(0))
            correct += (logits.argmax(1) == y).sum().item()
            total += y.numel()
    print(f"test loss {losses.avg:.3f}")
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="classifier_ckpt.pth")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device("cpu")

    checkpoint = torch.load(args.checkpoint, map_location="cpu")
    cfg = ModelConfig(**checkpoint["config"])
    model = MLPClassifier(cfg)
    model.load_state_dict(checkpoint["model"])
    model = model.to(device)
    if args.compile:
        model = torch.compile(model)
    criterion = nn.CrossEntropyLoss()

    data = TensorDataset(torch.randn(128, cfg.in_features), torch.randint(0, cfg.num_classes, (128,)))
    test_loader = DataLoader(data, batch_size=32)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=lambda candidate: evaluate(candidate, test_loader, criterion, device),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    accuracy = evaluate(model, test_loader, criterion, device)
    print(f"epoch {checkpoint['epoch']}: test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
