"""A post-training fit whose result is read only under flags (`if args.evaluate:`,
`if args.do_eval:`) runs under the same flags. Before, it ran on every run, and with the
flags off quantized a model nothing read."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source

SCRIPT = """import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader) / 64


parser = argparse.ArgumentParser()
parser.add_argument("--do_eval", action="store_true")
parser.add_argument("--do_save", action="store_true")
args = parser.parse_args()
x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
loader = DataLoader(TensorDataset(x, y), batch_size=16)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
{after}"""


def rewrite(text: str, approach: str = "ptq-dynamic"):
    return rewrite_source(Path("s.py"), text, build_options(approach, "runtime", {}, {}))


def fit_guard(text: str) -> str | None:
    """The `if` the fit sits under (the line before the fit's first line), if any."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "quantization.fit(" in line)
    above = lines[at - 1].removesuffix("  # neural-coder")
    return above.strip() if above.lstrip().startswith("if ") else None


@pytest.mark.parametrize(
    ("after", "guard"),
    [
        ("if args.do_eval:\n    print(evaluate(model, loader))\n", "if args.do_eval:"),
        (
            "if args.do_eval:\n    print(evaluate(model, loader))\n"
            "if args.do_save and epoch > 0:\n    torch.save(model.state_dict(), 'm.pt')\n",
            "if args.do_eval or args.do_save and epoch > 0:",
        ),
        # an unconditional save reads the model on every run: the fit runs on every run
        (
            "if args.do_eval:\n    print(evaluate(model, loader))\n"
            "torch.save(model.state_dict(), 'm.pt')\n",
            None,
        ),
        # read on the else path too
        (
            "if args.do_eval:\n    print(evaluate(model, loader))\n"
            "else:\n    torch.save(model.state_dict(), 'm.pt')\n",
            None,
        ),
        # the flag changes between the fit and its test: the fit cannot read it early
        (
            "args.do_eval = args.do_eval and len(loader) > 1\n"
            "if args.do_eval:\n    print(evaluate(model, loader))\n",
            None,
        ),
        # a test that calls something would run it twice
        (
            "if args.do_eval and torch.cuda.is_available() is False:\n    print(evaluate(model, loader))\n",
            None,
        ),
    ],
)
def test_the_fit_runs_under_the_flags_that_read_the_model(after, guard):
    source = SCRIPT.format(after=after)
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert fit_guard(text) == guard
    compile(text, "s.py", "exec")
    again, second = rewrite(text)
    assert second.status is Status.UNCHANGED and again == text
    assert revert_source(Path("s.py"), text)[0] == source


def test_the_last_epoch_fit_also_waits_for_the_flag():
    """`for epoch ...: train; if args.do_eval: evaluate(model)`: the fit in the last epoch,
    before that evaluation, runs only when the flag asks for it."""
    source = (
        SCRIPT.format(after="").rstrip()
        + "\n    if args.do_eval:\n        print(evaluate(model, loader))\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert fit_guard(text) == "if epoch == 1 and args.do_eval:"
