"""A trainer class that keeps its best epoch: `Trainer.fit()` trains `self.model`, saves
a checkpoint whenever the validation accuracy improves, and `main()` loads that best
checkpoint back into `trainer.model` (directly, or through `trainer.load_checkpoint`)
before its last evaluation. Synthetic data keeps it self-contained."""

import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class SmallConvNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def make_loaders(batch_size):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(192, 3, 8, 8, generator=g)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (images[:, 1].mean(dim=(1, 2)) > 0).long()
    train = DataLoader(TensorDataset(images[:160], labels[:160]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(images[160:], labels[160:]), batch_size=batch_size)
    return train, val


class Trainer:
    def __init__(self, args):
        self.args = args
        self.train_loader, self.val_loader = make_loaders(args.batch_size)
        self.model = SmallConvNet()
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=0.9)
        self.best_acc = 0.0
        os.makedirs(args.out_dir, exist_ok=True)

    def train_one_epoch(self, epoch):
        self.model.train()
        for images, targets in self.train_loader:
            loss = self.criterion(self.model(images), targets)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    @torch.no_grad()
    def validate(self):
        self.model.eval()
        correct = 0
        for images, targets in self.val_loader:
            correct += (self.model(images).argmax(1) == targets).sum().item()
        return correct / len(self.val_loader.dataset)

    def load_checkpoint(self, path):
        state = torch.load(path)
        self.model.load_state_dict(state["model"])
        return state["acc"]

    def fit(self):
        for epoch in range(self.args.epochs):
            self.train_one_epoch(epoch)
            acc = self.validate()
            print(f"epoch {epoch}: accuracy {acc:.4f}")
            if acc >= self.best_acc:
                self.best_acc = acc
                torch.save({"model": self.model.state_dict(), "acc": acc}, self.args.best)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out-dir", default="outputs")
    parser.add_argument("--best", default="outputs/best.pth")
    args = parser.parse_args()
    torch.manual_seed(0)
    trainer = Trainer(args)
    trainer.fit()
    recorded = trainer.load_checkpoint(args.best)
    print(f"best accuracy {recorded:.4f}, reloaded: {trainer.validate():.4f}")


if __name__ == "__main__":
    main()
