"""Functional training style: a generic `run_epochs` loop that takes the step as a
function and calls it with the model and each batch, and a `train_step` closure,
built inside main over its optimizer, that does the forward, backward and update."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def build_mlp(width: int = 48) -> nn.Module:
    return nn.Sequential(nn.Linear(10, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))


def run_epochs(step_fn, model, loader, epochs, log_every=5):
    for epoch in range(epochs):
        for i, (inputs, targets) in enumerate(loader):
            loss = step_fn(model, inputs, targets)
            if i % log_every == 0:
                print(f"epoch {epoch} batch {i}: loss {loss:.4f}")
    return model


def main(epochs: int = 3):
    torch.manual_seed(0)
    inputs = torch.randn(256, 10)
    targets = (inputs[:, :3].sum(dim=1) > 0).long()
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True)
    net = build_mlp()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    def train_step(model, x, y):
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    net = run_epochs(train_step, net, loader, epochs)
    net.eval()
    with torch.no_grad():
        accuracy = (net(inputs).argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    torch.save(net.state_dict(), "closure_model.pt")


if __name__ == "__main__":
    main()
