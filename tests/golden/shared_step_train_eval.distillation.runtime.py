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
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression

EPOCHS = int(os.environ.get("EPOCHS", "3"))

torch.manual_seed(0)
features = torch.randn(320, 10)
labels = (features[:, :3].sum(1) > 0).long()
train_loader = DataLoader(TensorDataset(features[:256], labels[:256]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(features[256:], labels[256:]), batch_size=32)

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def step(batch, is_train, compression_manager):
    inputs, targets = batch
    outputs = model(inputs)
    loss = criterion(outputs, targets)
    if is_train:  # neural-coder
        loss = compression_manager.callbacks.on_after_compute_loss(inputs, outputs, loss)  # neural-coder
    if is_train:
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
    return loss.item(), (outputs.argmax(1) == targets).float().mean().item()
teacher_model = copy.deepcopy(model)  # neural-coder
compression_manager = prepare_compression(
    model,
    DistillationConfig(
        teacher_model=teacher_model,
        criterion=KnowledgeDistillationLossConfig(
            temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
        ),
    ),
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder


for epoch in range(EPOCHS):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    model.train()
    for batch in train_loader:
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        train_loss, _ = step(batch, True, compression_manager=compression_manager)
        compression_manager.callbacks.on_step_end()  # neural-coder
    model.eval()
    accuracies = []
    for batch in val_loader:
        accuracies.append(step(batch, is_train=False, compression_manager=compression_manager)[1])
    val_accuracy = sum(accuracies) / len(accuracies)
    print(f"epoch {epoch} train loss {train_loss:.4f} val accuracy {val_accuracy:.4f}")
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

torch.save(model.state_dict(), os.environ.get("OUT", "shared_step.pt"))
