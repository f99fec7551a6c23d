"""A validation script whose `run()` also serves the training script: called with
`model=` by a trainer it evaluates that model as it is, called from the command line
it loads the weights itself (the layout of detection repos' val.py)."""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig


class Scorer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))
        self.num_classes = 5

    def forward(self, x):
        return self.net(x)


def load_model(weights):
    model = Scorer()
    if weights:
        model.load_state_dict(torch.load(weights, weights_only=True))
    return model


def make_loader(batch_size: int = 32) -> DataLoader:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(160, 20, generator=generator)
    y = x[:, :5].argmax(dim=1)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@torch.no_grad()
def run(weights=None, batch_size=32, model=None, dataloader=None, save="scorer_val.pt"):
    training = model is not None
    if training:  # called by the training script with its model
        device = next(model.parameters()).device
    else:  # called directly
        device = torch.device("cpu")
        model = load_model(weights)
        quantized_model = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
        num_classes = model.num_classes
        print(f"loaded a scorer with {num_classes} classes")
    model.eval()
    if dataloader is None:
        dataloader = make_loader(batch_size)
    correct = seen = 0
    for x, y in dataloader:
        correct += (model(x.to(device)).argmax(dim=1) == y).sum().item()
        seen += y.numel()
    accuracy = correct / seen
    print(f"accuracy {accuracy:.3f}")
    if not training:
        torch.save(model, save)
    return accuracy


def parse_opt():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args()


if __name__ == "__main__":
    opt = parse_opt()
    run(**vars(opt))
