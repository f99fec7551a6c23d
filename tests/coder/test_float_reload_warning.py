"""QAT saves the int8 model's state dict; a path of the same script that loads it into a
float instance of the class (fast-neural-style's `stylize`, an eval subcommand) cannot.
Warned; a same-class teacher loaded before training is no such path."""

from __future__ import annotations

from pathlib import Path

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import sys
import torch
import torch.nn.functional as F
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 2)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
def train():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
    torch.save(model.state_dict(), "net.pt")
def evaluate():
    with torch.no_grad():
        net = Net()
        net.load_state_dict(torch.load("net.pt", weights_only=True))
        print(net(torch.randn(1, 8)))
if sys.argv[1:] == ["eval"]:
    evaluate()
else:
    train()
"""


def _warnings(text: str) -> list[str]:
    out, report = rewrite_source(Path("s.py"), text, build_options("qat", None, {}, {}))
    assert report.status is Status.TRANSFORMED, report
    return report.warnings


def test_a_float_instance_loading_the_saved_state_dict_is_warned():
    warnings = _warnings(SCRIPT)
    assert any(
        "line 25: a float Net() built at line 24 loads a state dict" in w for w in warnings
    ), warnings


def test_a_same_class_teacher_loaded_before_training_is_not_warned():
    text = SCRIPT.replace(
        "    model = Net()\n",
        "    teacher = Net()\n    teacher.load_state_dict(torch.load('t.pt', weights_only=True))\n    model = Net()\n",
    ).replace("def evaluate():\n    with", "def evaluate():\n    return\n    with")
    text = text.replace(
        '        net.load_state_dict(torch.load("net.pt", weights_only=True))\n', ""
    )
    assert not any("loads a state dict" in w for w in _warnings(text))
