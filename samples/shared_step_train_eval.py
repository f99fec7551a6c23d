"""One `step(batch, is_train)` for the training and the validation batches.

The step computes the loss for every batch and only backs up and steps the optimizer
when `is_train` is set; the validation loop calls it with `is_train=False` and, as many
scripts do, without `torch.no_grad()`. The compression hooks of the step must run on the
training batches only. Synthetic data keeps it self-contained.
"""

import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = int(os.environ.get("EPOCHS", "3"))

torch.manual_seed(0)
features = torch.randn(320, 10)
labels = (features[:, :3].sum(1) > 0).long()
train_loader = DataLoader(TensorDataset(features[:256], labels[:256]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(features[256:], labels[256:]), batch_size=32)

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def step(batch, is_train):
    inputs, targets = batch
    outputs = model(inputs)
    loss = criterion(outputs, targets)
    if is_train:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item(), (outputs.argmax(1) == targets).float().mean().item()


for epoch in range(EPOCHS):
    model.train()
    for batch in train_loader:
        train_loss, _ = step(batch, True)
    model.eval()
    accuracies = []
    for batch in val_loader:
        accuracies.append(step(batch, is_train=False)[1])
    val_accuracy = sum(accuracies) / len(accuracies)
    print(f"epoch {epoch} train loss {train_loss:.4f} val accuracy {val_accuracy:.4f}")

torch.save(model.state_dict(), os.environ.get("OUT", "shared_step.pt"))
