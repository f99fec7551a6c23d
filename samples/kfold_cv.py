"""K-fold cross-validation: a fresh model per fold, trained, scored and saved in its fold.

Each fold builds its model from a factory, trains it with the loss computed and backed
up in one expression, evaluates it on the held-out fold and saves its weights; the mean
score is printed at the end. Synthetic data keeps it self-contained.
"""

import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset, TensorDataset

FOLDS = int(os.environ.get("FOLDS", "3"))
EPOCHS = int(os.environ.get("EPOCHS", "2"))

torch.manual_seed(0)
inputs = torch.randn(240, 6)
dataset = TensorDataset(inputs, (inputs[:, 0] + inputs[:, 1] > 0).long())
chunks = torch.randperm(len(dataset)).chunk(FOLDS)


def make_model():
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


scores = []
for fold in range(FOLDS):
    held_out = chunks[fold]
    rest = torch.cat([c for i, c in enumerate(chunks) if i != fold])
    train_loader = DataLoader(Subset(dataset, rest.tolist()), batch_size=16, shuffle=True)
    val_loader = DataLoader(Subset(dataset, held_out.tolist()), batch_size=16)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(EPOCHS):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in val_loader)
    scores.append(correct / len(held_out))
    torch.save(model, f"fold{fold}.pt")
    print(f"fold {fold}: accuracy {scores[-1]:.3f}")
print(f"mean accuracy {sum(scores) / len(scores):.3f}")
