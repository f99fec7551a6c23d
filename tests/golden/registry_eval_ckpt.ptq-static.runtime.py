"""Evaluate a checkpoint of a model chosen by name from a registry.

The architecture comes from the command line (`ARCHS[args.arch](...)`), the checkpoint
was written by a DistributedDataParallel run (its keys start with "module."), and the
evaluation returns accuracy and latency together.
"""

import argparse
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class ConvNet(nn.Module):
    def __init__(self, num_classes=10, width=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def wide_convnet(num_classes=10):
    return ConvNet(num_classes, width=16)


ARCHS = {"convnet": ConvNet, "wide_convnet": wide_convnet}


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="convnet", choices=sorted(ARCHS))
    parser.add_argument("--checkpoint", default="checkpoint_best.pth")
    parser.add_argument("--batch-size", type=int, default=16)
    return parser.parse_args()


@torch.inference_mode()
def evaluate(model, loader):
    model.eval()
    correct = total = 0
    start = time.perf_counter()
    for images, labels in loader:
        correct += (model(images).argmax(dim=1) == labels).sum().item()
        total += labels.numel()
    return 100.0 * correct / total, (time.perf_counter() - start) / len(loader)


def main():
    args = parse_args()
    model = ARCHS[args.arch](num_classes=10)
    checkpoint = torch.load(args.checkpoint, map_location="cpu")
    state_dict = {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}
    model.load_state_dict(state_dict)

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(64, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    val_loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda candidate: evaluate(candidate, val_loader)[0],
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    top1, seconds = evaluate(model, val_loader)
    print(f"top1 {top1:.2f}  {seconds * 1000:.1f} ms/batch")


if __name__ == "__main__":
    main()
