"""Evaluate a trained checkpoint (eval only: nothing here trains)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightnet.data import synthetic_loaders  # noqa: E402
from lightnet.engine import evaluate  # noqa: E402
from lightnet.models import LightNet, calibrate_head  # noqa: E402, F401


def main(weights: str = "lightnet.pt") -> None:
    _, val_loader = synthetic_loaders()
    model = LightNet()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    print(f"accuracy {evaluate(model, val_loader):.3f}")
    torch.save(model, "lightnet_eval.pt")


if __name__ == "__main__":
    main()
