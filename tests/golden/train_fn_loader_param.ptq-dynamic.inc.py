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
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


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


def fit_model(model, loader, optimizer, epochs):
    criterion = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        running = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item()
        print(f"epoch {epoch + 1}/{epochs} loss {running / len(loader):.4f}")


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
    fit_model(model, train_loader, optimizer, args.epochs)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=lambda candidate: float(accuracy(candidate, val_loader)),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    for split, loader in [("val", val_loader), ("test", test_loader)]:
        print(f"{split} accuracy: {accuracy(model, loader):.4f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
