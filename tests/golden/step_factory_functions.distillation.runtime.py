"""Step functions built by factory functions (the "step by step" book's style, before
its trainer class): `make_train_step_fn(model, loss_fn, optimizer)` returns a closure
that trains on one mini-batch, `make_val_step_fn` one that only evaluates, and one
`mini_batch()` loop runs either over a loader."""

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset, random_split
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


def make_train_step_fn(model, loss_fn, optimizer, compression_manager):
    def perform_train_step_fn(x, y):
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        model.train()
        yhat = model(x)
        loss = loss_fn(yhat, y)
        loss = compression_manager.callbacks.on_after_compute_loss(x, yhat, loss)  # neural-coder
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        optimizer.zero_grad()
        compression_manager.callbacks.on_step_end()  # neural-coder
        return loss.item()

    return perform_train_step_fn


def make_val_step_fn(model, loss_fn):
    def perform_val_step_fn(x, y):
        model.eval()
        yhat = model(x)
        loss = loss_fn(yhat, y)
        return loss.item()

    return perform_val_step_fn


def mini_batch(device, data_loader, step_fn):
    mini_batch_losses = []
    for x_batch, y_batch in data_loader:
        x_batch = x_batch.to(device)
        y_batch = y_batch.to(device)
        mini_batch_losses.append(step_fn(x_batch, y_batch))
    return np.mean(mini_batch_losses)


device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(13)
x = torch.randn(320, 12)
y = (x[:, :3].sum(dim=1) > 0).long()
train_data, val_data = random_split(TensorDataset(x, y), [256, 64])
train_loader = DataLoader(train_data, batch_size=16, shuffle=True)
val_loader = DataLoader(val_data, batch_size=32)

model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
model.to(device)
optimizer = optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()
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

train_step_fn = make_train_step_fn(
    model, loss_fn, optimizer, compression_manager=compression_manager
)  # neural-coder: wrapped
val_step_fn = make_val_step_fn(model, loss_fn)

n_epochs = 3
losses, val_losses = [], []
for epoch in range(n_epochs):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    losses.append(mini_batch(device, train_loader, train_step_fn))
    with torch.no_grad():
        val_losses.append(mini_batch(device, val_loader, val_step_fn))
    print(f"epoch {epoch}: train loss {losses[-1]:.4f}, val loss {val_losses[-1]:.4f}")
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

torch.save(model.state_dict(), "step_factory_model.pt")
