"""K-fold cross-validation: a fresh model per fold, trained, scored and saved in its fold.

Each fold builds its model from a factory, trains it with the loss computed and backed
up in one expression, evaluates it on the held-out fold and saves its weights; the mean
score is printed at the end. Synthetic data keeps it self-contained.
"""

import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

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
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (EPOCHS * len(train_loader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(EPOCHS):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for xb, yb in train_loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    model.eval()
    with torch.no_grad():
        correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in val_loader)
    scores.append(correct / len(held_out))
    torch.save(model, f"fold{fold}.pt")
    print(f"fold {fold}: accuracy {scores[-1]:.3f}")
print(f"mean accuracy {sum(scores) / len(scores):.3f}")
