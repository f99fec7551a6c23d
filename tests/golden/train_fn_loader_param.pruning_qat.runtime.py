"""A tabular classifier whose training loop lives in `fit_model(model, loader, ...)`.

A common layout once a notebook grows into a script: `main()` builds the data
loaders, the model and the optimizer, hands them to a training function that holds
the epoch loop and receives the loader as a parameter, then evaluates the trained
model on two held-out splits in a loop and saves its weights.
"""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class MLP(nn.Module):
    def __init__(self, features=16, hidden=32, classes=3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


def synthetic(n, seed, features=16, classes=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, :classes] * torch.arange(1, classes + 1)).argmax(dim=1)
    return TensorDataset(x, y)


def fit_model(model, loader, optimizer, epochs, compression_manager):
    criterion = nn.CrossEntropyLoss()
    fit_pruning_schedules(compression_manager.callbacks, max(1, int(0.8 * (epochs * len(loader)))))  # neural-coder
    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        running = 0.0
        for x, y in loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            running += loss.item()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch + 1}/{epochs} loss {running / len(loader):.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    hits = sum((model(x).argmax(dim=1) == y).sum().item() for x, y in loader)
    return hits / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="mlp.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader = DataLoader(synthetic(600, 0), batch_size=32, shuffle=True)
    val_loader = DataLoader(synthetic(200, 1), batch_size=50)
    test_loader = DataLoader(synthetic(200, 2), batch_size=50)

    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
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
    fit_model(model, train_loader, optimizer, args.epochs, compression_manager=compression_manager)
    compression_manager.callbacks.on_train_end()  # neural-coder

    for split, loader in [("val", val_loader), ("test", test_loader)]:
        print(f"{split} accuracy: {accuracy(model, loader):.4f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
