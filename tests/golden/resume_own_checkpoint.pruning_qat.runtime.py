"""A classifier trained for a few epochs, checkpointed after each one (model, optimizer,
epoch), that a second run continues with `--resume ckpt/checkpoint.pth`: the resume
block loads the weights and the optimizer state and moves the start epoch on.

Synthetic data keeps it self-contained.
"""

import argparse
import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--resume", default="")
    parser.add_argument("--out-dir", default="ckpt")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(256, 16)
    y = x[:, :4].argmax(1)
    train_loader = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=32)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start_epoch = 0
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=1,
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    if args.resume:
        ckpt = torch.load(args.resume, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch = ckpt["epoch"] + 1
    os.makedirs(args.out_dir, exist_ok=True)
    fit_pruning_schedules(
        compression_manager.callbacks,
        max(1, int(0.8 * (len(range(start_epoch, args.epochs)) * len(train_loader)))),
    )  # neural-coder
    for epoch in range(start_epoch, args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for inputs, targets in train_loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        acc = evaluate(model, val_loader)
        print(f"epoch {epoch} acc {acc:.3f}")
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
            os.path.join(args.out_dir, "checkpoint.pth"),
        )
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), os.path.join(args.out_dir, "final.pth"))


if __name__ == "__main__":
    main()
