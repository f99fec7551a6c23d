"""CIFAR-style classifier trained at module level, keeping the best epoch.

The layout of many small research repositories: loaders and the model built at
module level, a `train_one_epoch()` that returns the epoch's mean loss, an
`evaluate()` that returns accuracy, an L2 term added to the loss, and the best
epoch saved as a checkpoint dict. After training the best checkpoint is loaded
back into the model, which is evaluated once more and saved. Synthetic data keeps
it self-contained.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = int(os.environ.get("EPOCHS", "3"))
CHECKPOINT = "ckpt_best.pth"
FINAL = "model_final.pth"


class SmallCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def make_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 8, 8, generator=g)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (images[:, 1].mean(dim=(1, 2)) > 0).long()
    return TensorDataset(images, labels)


def l2_penalty(model):
    return sum(p.pow(2).sum() for p in model.parameters())


def train_one_epoch(model, loader, optimizer, epoch):
    model.train()
    total = 0.0
    for step, (images, labels) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels) + 1e-4 * l2_penalty(model)
        loss.backward()
        optimizer.step()
        total += loss.item()
    print(f"epoch {epoch} train loss {total / len(loader):.4f}")
    return total / len(loader)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = 0
    for images, labels in loader:
        correct += (model(images).argmax(dim=1) == labels).sum().item()
    return correct / len(loader.dataset)


torch.manual_seed(0)
train_loader = DataLoader(make_split(512, 1), batch_size=32, shuffle=True)
test_loader = DataLoader(make_split(256, 2), batch_size=64)

model = SmallCNN()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

best_acc = 0.0
for epoch in range(EPOCHS):
    train_one_epoch(model, train_loader, optimizer, epoch)
    acc = evaluate(model, test_loader)
    if acc > best_acc:
        best_acc = acc
        torch.save({"model": model.state_dict(), "acc": acc, "epoch": epoch}, CHECKPOINT)

checkpoint = torch.load(CHECKPOINT)
model.load_state_dict(checkpoint["model"])
print(f"best epoch {checkpoint['epoch']} (accuracy {checkpoint['acc']:.4f})")

final_acc = evaluate(model, test_loader)
print(f"final accuracy: {final_acc:.4f}")
torch.save(model.state_dict(), FINAL)
