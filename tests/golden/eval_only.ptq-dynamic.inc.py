"""Evaluate a trained classifier on a held-out set; no training in this script."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


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
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=lambda candidate: float(evaluate(candidate, eval_loader)),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    top1 = evaluate(model, eval_loader)
    print(f"top-1 accuracy: {top1:.4f}")
