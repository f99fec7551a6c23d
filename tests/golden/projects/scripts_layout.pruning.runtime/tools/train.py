"""Run from the repository root or from tools/: the project package sits one folder up."""

import argparse
import sys
from pathlib import Path

import torch
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

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
    compression_manager = prepare_compression(
        model,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=max(1, int(0.8 * (args.epochs * len(train_loader)))),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        loss = train_one_epoch(
            model,
            train_loader,
            optimizer,
            epoch,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        print(f"epoch {epoch}: loss {loss:.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    print(f"accuracy {evaluate(model, val_loader):.3f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
