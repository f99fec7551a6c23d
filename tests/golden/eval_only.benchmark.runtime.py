"""Evaluate a trained classifier on a held-out set; no training in this script."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import benchmark
from neural_coder.runtime.config import BenchmarkConfig


def build_classifier():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(12, 24, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(24 * 9, 8),
    )


def evaluate(model, loader):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += y.numel()
    return correct / total


if __name__ == "__main__":
    images = torch.randn(160, 3, 20, 20, generator=torch.Generator().manual_seed(4))
    teacher_net = build_classifier()
    with torch.no_grad():
        labels = teacher_net(images).argmax(dim=1)
    eval_loader = DataLoader(TensorDataset(images, labels), batch_size=16)

    model = build_classifier()
    benchmark.fit(
        model, BenchmarkConfig(warmup=5, iteration=50, num_of_instance=1), b_dataloader=eval_loader
    )  # neural-coder
    top1 = evaluate(model, eval_loader)
    print(f"top-1 accuracy: {top1:.4f}")
