"""A small classifier trained with the best epoch's weights kept in a safetensors file
(`save_file(model.state_dict(), ...)`), reloaded at the end and evaluated, then loaded
into a fresh model for export: the checkpoint style of current training repositories."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, TensorDataset


class SmallConvNet(nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--checkpoint", default="best.safetensors")
    return parser.parse_args()


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = total = 0
    for images, labels in loader:
        correct += (model(images).argmax(dim=1) == labels).sum().item()
        total += labels.numel()
    return correct / total


def main():
    args = parse_args()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(96, 3, 8, 8, generator=generator)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long()
    train_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[64:], labels[64:]), batch_size=16)

    model = SmallConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    best_acc = -1.0
    for epoch in range(args.epochs):
        model.train()
        for batch_images, batch_labels in train_loader:
            loss = F.cross_entropy(model(batch_images), batch_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        acc = evaluate(model, val_loader)
        print(f"epoch {epoch}: val acc {acc:.3f}")
        if acc > best_acc:
            best_acc = acc
            save_file(model.state_dict(), args.checkpoint)

    model.load_state_dict(load_file(args.checkpoint))
    print(f"best checkpoint: val acc {evaluate(model, val_loader):.3f}")

    exported = SmallConvNet()
    exported.load_state_dict(load_file(args.checkpoint))
    print(f"exported: {type(exported.head).__module__}.{type(exported.head).__name__}")
    print(f"exported acc {evaluate(exported, val_loader):.3f}")


if __name__ == "__main__":
    main()
