"""Full-batch-ish training with L-BFGS, as its users write it: the forward and
backward live in a local `closure()` that `optimizer.step(closure)` calls (L-BFGS
calls it several times per step)."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n: int = 256):
    x = torch.randn(n, 8)
    y = torch.sin(x[:, :2].sum(dim=1, keepdim=True)) + 0.1 * x[:, 2:3]
    return x, y


def main(epochs: int = 3) -> None:
    torch.manual_seed(0)
    x, y = make_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    criterion = nn.MSELoss()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4, history_size=10)

    for epoch in range(epochs):
        for step, (inputs, targets) in enumerate(loader):

            def closure():
                optimizer.zero_grad()
                outputs = model(inputs)  # noqa: B023 - the closure runs within this iteration
                loss = criterion(outputs, targets)  # noqa: B023
                loss.backward()
                return loss

            loss = optimizer.step(closure)
        print(f"epoch {epoch}: loss {loss.item():.5f}")

    model.eval()
    with torch.no_grad():
        mse = criterion(model(x), y).item()
    print(f"mse {mse:.5f}")
    torch.save(model.state_dict(), "lbfgs_model.pt")


if __name__ == "__main__":
    main()
