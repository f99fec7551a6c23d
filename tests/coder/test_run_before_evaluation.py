"""Inference scripts that run the model (a demo generation, a prediction) before the
function that evaluates it: the fit goes before that first run, tuned with the evaluation
as before; it stays before the evaluation when what the fit needs is bound later."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

BUILD = """import torch


def evaluate(model, loader):
    with torch.no_grad():
        return sum(float(model(x).sum()) for x, in loader)


def show(model, x):
    print(model(x))


model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
model.eval()
loader = [(torch.randn(2, 4),)]
"""

EVAL = "print(evaluate(model, loader))\n"

RUNS = [
    "print(model(torch.randn(1, 4)))\n",
    "with torch.no_grad():\n    out = model(torch.randn(1, 4))\n",
    "show(model, torch.randn(1, 4))\n",
    "for x in [torch.randn(1, 4), torch.randn(2, 4)]:\n    show(model, x)\n",
]


def fitted_before(text: str, approach: str) -> str:
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, None, {}, {}))
    assert report.status is Status.TRANSFORMED, report.message
    got = out.splitlines()
    at = next(i for i, line in enumerate(got) if "fit(" in line)
    assert "evaluate(candidate, loader)" in out  # the evaluation still tunes the fit
    return next(line for line in got[at:] if line in text.splitlines())


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
@pytest.mark.parametrize("run", RUNS)
def test_the_fit_goes_before_the_first_run(run, approach):
    # before: the fit went before `print(evaluate(...))`, after the demo ran the float model
    assert fitted_before(BUILD + run + EVAL, approach) == run.splitlines()[0]


def test_in_main_too():
    body = BUILD.split("model = torch.nn")[0]
    main = (
        "def main():\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))\n"
        "    loader = [(torch.randn(2, 4),)]\n"
        "    show(model, torch.randn(1, 4))\n"
        "    print(evaluate(model, loader))\n\n\n"
        "main()\n"
    )
    assert fitted_before(body + main, "ptq-dynamic") == "    show(model, torch.randn(1, 4))"


def test_an_evaluation_reading_a_later_name_keeps_the_fit_before_it():
    text = BUILD.replace("loader = [(torch.randn(2, 4),)]\n", "") + RUNS[0]
    text += "loader = [(torch.randn(2, 4),)]\n" + EVAL
    out, report = rewrite_source(Path("s.py"), text, build_options("ptq-static", None, {}, {}))
    assert report.status is Status.TRANSFORMED, report.message
    assert any("only bound after it" in w for w in report.warnings), report.warnings
    got = out.splitlines()
    assert got.index(RUNS[0].strip()) < next(i for i, line in enumerate(got) if "fit(" in line)


@pytest.mark.parametrize(
    "setup", ["model.fc = torch.nn.Identity()\n", "del model.head\n", "model.fc.bias.data[:] = 0\n"]
)
def test_replacing_a_part_of_the_model_is_no_run(setup):
    """A backbone built, its head replaced (`model.fc = nn.Identity()`), then its weights
    loaded by a helper: the fit follows the load (it went before the replaced head, and
    the load after it was refused as replacing the compressed model's weights)."""
    text = (
        BUILD.replace("model.eval()\n", "")
        + setup
        + "load_pretrained_weights(model, 'w.pt')\nmodel.eval()\n"
        + EVAL
    )
    text = text.replace(
        "def show(",
        "def load_pretrained_weights(model, path):\n    model.load_state_dict(torch.load(path))\n\n\ndef show(",
    )
    assert fitted_before(text, "ptq-dynamic") == "print(evaluate(model, loader))"
