"""A step-budget training script: a while loop over an iterator, no epochs,
a model factory, gradient clipping, a per-step scheduler and a criterion
object, the way many research scripts are written."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

MAX_STEPS = 40


def build_model(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(16, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 3)
    )


def batches(loader):
    while True:
        yield from loader


def run():
    torch.manual_seed(1)
    x = torch.randn(640, 16)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    network = build_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=MAX_STEPS)
    stream = batches(loader)
    step = 0
    while step < MAX_STEPS:
        inputs, labels = next(stream)
        logits = network(inputs)
        loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
    with torch.no_grad():
        accuracy = (network(x).argmax(1) == y).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    return network


if __name__ == "__main__":
    run()
