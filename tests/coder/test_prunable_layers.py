"""Pruning prunes Linear and convolution weights and never the classifier head (the last
Linear): a model of the file with nothing else to prune (an LSTMCell sequence predictor
with a Linear output, an embedding under one projection) is refused, since it would end
0 % sparse; any second Linear, a convolution, a layer holding Linears, a Linear built in a
loop or a class deriving from nn.Linear goes through. The same holds for a model built
from torch.nn directly (`model = nn.Linear(784, 10)`, a Sequential with one Linear)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import torch
import torch.nn as nn
class Scaled(nn.Linear):
    pass
class Predictor(nn.Module):
    def __init__(self, d=8):
        super().__init__()
{layers}
    def forward(self, x):
        return self.out(x)
model = Predictor()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x in [torch.randn(4, 8)]:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
torch.save(model.state_dict(), "predictor.pt")
"""


def rewrite(layers: str, approach: str = "pruning"):
    text = SCRIPT.format(layers=layers)
    return rewrite_source(Path("s.py"), text, build_options(approach, "runtime", {}, {}))


@pytest.mark.parametrize(
    ("layers", "said"),
    [
        (
            "        self.cell = nn.LSTMCell(8, 8)\n        self.out = nn.Linear(8, 1)",
            "has one Linear, its classifier head (its other layers: LSTMCell)",
        ),
        (
            "        self.embed = nn.Embedding(10, 8)\n        self.out = nn.Linear(8, 8)",
            "has one Linear, its classifier head (its other layers: Embedding)",
        ),
        ("        self.out = nn.Linear(8, 1)", "has one Linear, its classifier head:"),
    ],
    ids=["lstm-cell", "embedding", "one-linear"],
)
@pytest.mark.parametrize("approach", ["pruning", "pruning+qat"])
def test_a_model_whose_only_linear_is_its_head_is_refused(layers, said, approach):
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(layers, approach)
    message = str(refused.value)
    assert f"Predictor (line 5) {said}" in message and "end 0 % sparse" in message
    assert "--approach qat, ptq-static or ptq-dynamic" in message


@pytest.mark.parametrize(
    "layers",
    [
        "        self.hidden = nn.Linear(8, 8)\n        self.out = nn.Linear(8, 1)",
        "        self.conv = nn.Conv1d(1, 1, 3)\n        self.out = nn.Linear(8, 1)",
        "        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])\n"
        "        self.out = nn.Linear(8, 1)",
        "        self.enc = nn.TransformerEncoderLayer(8, 2)\n        self.out = nn.Linear(8, 1)",
        "        self.proj = Scaled(8, 8)\n        self.out = nn.Linear(8, 1)",
        "        import torchvision\n        self.body = torchvision.ops.MLP(8, [8])\n"
        "        self.out = nn.Linear(8, 1)",
    ],
    ids=["two-linears", "conv", "loop", "transformer-layer", "linear-subclass", "unread"],
)
def test_a_model_with_a_layer_to_prune_goes_through(layers):
    _, report = rewrite(layers)
    assert report.status is Status.TRANSFORMED, report.message


def test_other_approaches_are_not_concerned():
    cell = "        self.cell = nn.LSTMCell(8, 8)\n        self.out = nn.Linear(8, 1)"
    _, report = rewrite(cell, "qat")
    assert report.status is Status.TRANSFORMED, report.message


def rewrite_built(build: str, approach: str = "pruning"):
    layers = "        self.out = nn.Linear(8, 1)"
    text = SCRIPT.format(layers=layers).replace("model = Predictor()", build)
    return rewrite_source(Path("s.py"), text, build_options(approach, "runtime", {}, {}))


@pytest.mark.parametrize(
    ("build", "said"),
    [
        ("model = nn.Linear(8, 1)", "model, nn.Linear(8, 1) at line 11, has one Linear"),
        (
            "model = torch.nn.Sequential(nn.Flatten(), nn.Linear(8, 1))",
            "has one Linear, its classifier head (its other layers: Flatten)",
        ),
        (
            "model = nn.Sequential(nn.Embedding(10, 8), nn.ReLU())",
            "has no Linear or convolution layer",
        ),
        ("if True:\n    model = nn.Linear(8, 1)\nelse:\n    model = nn.Linear(8, 2)", "one Linear"),
    ],
    ids=["linear", "sequential", "no-linear", "same-build-on-both-paths"],
)
@pytest.mark.parametrize("approach", ["pruning", "pruning+qat"])
def test_a_torch_nn_model_with_only_a_head_is_refused(build, said, approach):
    with pytest.raises(NeuralCoderError) as refused:
        rewrite_built(build, approach)
    message = str(refused.value)
    assert said in message and "end 0 % sparse" in message


@pytest.mark.parametrize(
    "build",
    [
        "model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))",
        "model = nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten(), nn.Linear(6, 1))",
        "model = nn.Sequential(Predictor(), nn.Linear(1, 1))",  # the class's Linear, then this
        "layers = [nn.Linear(8, 8), nn.Linear(8, 1)]\nmodel = nn.Sequential(*layers)",  # unread
        "model = nn.Linear(8, 1) if False else nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 1))",
    ],
    ids=["two-linears", "conv", "file-class-inside", "starred", "different-builds"],
)
def test_a_torch_nn_model_with_a_layer_to_prune_goes_through(build):
    _, report = rewrite_built(build)
    assert report.status is Status.TRANSFORMED, report.message
