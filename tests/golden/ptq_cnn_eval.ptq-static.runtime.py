"""Evaluate a trained image classifier on its validation split.

The style of a torchvision-like evaluation script: an argparse `main()`, a model
class with BatchNorm layers, weights loaded from a checkpoint file, a validation
set read from disk, and an `evaluate()` under `@torch.no_grad()` that returns
top-1 accuracy in percent. The checkpoint and the validation set are written
first when they are missing (this machine cannot download them): the labels are
what the checkpoint predicts on the images it is most confident about, so fp32
scores 100 %.
"""

import argparse
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class ConvNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.block = nn.Sequential(
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x):
        x = self.pool(self.block(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


def prepare(checkpoint, data):
    """Write a checkpoint (with BatchNorm statistics) and a labelled validation set."""
    torch.manual_seed(0)
    model = ConvNet()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(32, 3, 24, 24))
    model.eval()
    images = torch.randn(1024, 3, 24, 24, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        top2 = model(images).topk(2, dim=1)
    # a trained model is confident on most of its validation set: keep those images
    margin = top2.values[:, 0] - top2.values[:, 1]
    keep = margin.argsort(descending=True)[:256]
    images, labels = images[keep], top2.indices[keep, 0]
    torch.save({"epoch": 90, "state_dict": model.state_dict()}, checkpoint)
    torch.save({"images": images, "labels": labels}, data)


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        correct += (model(images).argmax(dim=1) == targets).sum().item()
        total += targets.size(0)
    return 100.0 * correct / total


def main():
    parser = argparse.ArgumentParser(description="evaluate a ConvNet checkpoint")
    parser.add_argument("--checkpoint", default="convnet.pt")
    parser.add_argument("--data", default="val.pt")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    device = torch.device("cpu")

    if not Path(args.checkpoint).exists() or not Path(args.data).exists():
        prepare(args.checkpoint, args.data)
    model = ConvNet()
    model.load_state_dict(torch.load(args.checkpoint, weights_only=True)["state_dict"])
    model.to(device)
    val = torch.load(args.data, weights_only=True)
    val_loader = DataLoader(TensorDataset(val["images"], val["labels"]), batch_size=args.batch_size)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda candidate: evaluate(candidate, val_loader, device),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    top1 = evaluate(model, val_loader, device)
    print(f"top-1 accuracy: {top1:.2f}%")


if __name__ == "__main__":
    main()
