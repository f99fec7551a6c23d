"""Run from the repository root or from tools/: the project package sits one folder up."""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightnet.data import synthetic_loaders  # noqa: E402
from lightnet.engine import evaluate, train_one_epoch  # noqa: E402
from lightnet.models import LightNet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="lightnet.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    train_loader, val_loader = synthetic_loaders()
    model = LightNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, optimizer, epoch)
        print(f"epoch {epoch}: loss {loss:.4f}")
    print(f"accuracy {evaluate(model, val_loader):.3f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
