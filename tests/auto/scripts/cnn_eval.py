"""Evaluate an image classifier checkpoint on its validation set.

A CIFAR-style evaluation script: argparse, a small CNN, weights and the
validation tensors read from files next to the script (written on first use:
this machine downloads nothing; the labels are what the checkpoint predicts on
the images it is most confident about, so fp32 scores 100 %).
"""

import argparse
import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(32 * 16, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def write_checkpoint(checkpoint, data):
    torch.manual_seed(0)
    model = SmallCNN().eval()
    images = torch.randn(512, 3, 16, 16)
    with torch.no_grad():
        top2 = model(images).topk(2, dim=1)
    keep = (top2.values[:, 0] - top2.values[:, 1]).argsort(descending=True)[:128]
    torch.save(model.state_dict(), checkpoint)
    torch.save({"images": images[keep], "labels": top2.indices[keep, 0]}, data)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = seen = 0
    for images, labels in loader:
        correct += (model(images).argmax(1) == labels).sum().item()
        seen += labels.numel()
    return 100.0 * correct / seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="cnn.pt")
    parser.add_argument("--data", default="cnn_val.pt")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not (os.path.exists(args.checkpoint) and os.path.exists(args.data)):
        write_checkpoint(args.checkpoint, args.data)

    model = SmallCNN()
    model.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    val = torch.load(args.data, weights_only=True)
    loader = DataLoader(TensorDataset(val["images"], val["labels"]), batch_size=args.batch_size)
    accuracy = evaluate(model, loader)
    print(f"accuracy {accuracy:.2f}%")


if __name__ == "__main__":
    main()
