"""One epoch function for both training and evaluation, chosen by a flag argument:
`run_epoch(..., train=True)` steps the optimizer, `run_epoch(..., train=False)` only
measures, and both run in the same epoch loop."""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


def make_split(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 16, generator=gen)
    labels = (features[:, :4].sum(dim=1) > 0).long()
    return TensorDataset(features, labels)


def run_epoch(model, loader, criterion, optimizer=None, train=True, compression_manager=None):
    model.train(train)
    seen, correct, total_loss = 0, 0, 0.0
    for inputs, labels in loader:
        if train:  # neural-coder
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
        with torch.set_grad_enabled(train):
            logits = model(inputs)
            loss = criterion(logits, labels)
        if train:
            optimizer.zero_grad()
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        total_loss += loss.item() * labels.size(0)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += labels.size(0)
        if train:  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
    return total_loss / seen, correct / seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="flag_epoch_model.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader = DataLoader(make_split(256, 0), batch_size=32, shuffle=True)
    val_loader = DataLoader(make_split(128, 1), batch_size=64)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (args.epochs * len(train_loader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_loss, train_acc = run_epoch(
            model,
            train_loader,
            criterion,
            optimizer,
            train=True,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        val_loss, val_acc = run_epoch(
            model, val_loader, criterion, train=False, compression_manager=compression_manager
        )  # neural-coder: wrapped
        print(f"epoch {epoch}: train {train_loss:.3f} / {train_acc:.3f}, val {val_loss:.3f} / {val_acc:.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
