"""QAT on a script that resumes its own run (`if args.resume:` loads the model's and the
optimizer's state, or moves the start epoch): the checkpoint the rewritten script saved
holds the fake-quant model, which loads only into the prepared one, so the manager is
prepared before the resume block. Weights every run starts from keep the old place."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

HEAD = """import argparse
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--resume", default="")
args = parser.parse_args()
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
start_epoch = 0
"""

LOOP = """for epoch in range(start_epoch, 3):
    for x, y in [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save({"model": model.state_dict(), "epoch": epoch}, "checkpoint.pth")
"""

RESUME = """if args.resume:
    ckpt = torch.load(args.resume)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
"""

START_EPOCH = """if args.resume:
    checkpoint = torch.load(args.resume)
    start_epoch = checkpoint["epoch"] + 1
    model.load_state_dict(checkpoint["model"])
"""


def prepared_before(text: str, approach: str = "qat") -> str:
    """The user line the prepare is inserted before."""
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, None, {}, {}))
    assert report.status is Status.TRANSFORMED, report.message
    got = out.splitlines()
    at = next(i for i, line in enumerate(got) if "prepare_compression(" in line)
    return next(line for line in got[at:] if line in text.splitlines())


@pytest.mark.parametrize("resume", [RESUME, START_EPOCH])
@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_qat_is_prepared_before_a_resume_block(resume, approach):
    # before: prepared right before the epoch loop, after the resume's load, which failed
    # on the fake-quant keys of the run's own checkpoint
    assert prepared_before(HEAD + resume + LOOP, approach) == "if args.resume:"


@pytest.mark.parametrize(
    "start",
    [
        'model.load_state_dict(torch.load("pretrained.pt"))\n',  # every run starts from it
        'if args.resume:\n    model.load_state_dict(torch.load("pretrained.pt"))\n',  # no run state
    ],
)
def test_weights_every_run_starts_from_load_before_the_prepare(start):
    assert prepared_before(HEAD + start + LOOP) == "for epoch in range(start_epoch, 3):"


def test_pruning_keeps_its_place_after_the_resume():
    # pruned weights are float weights: the checkpoint loads into the bare model
    assert prepared_before(HEAD + RESUME + LOOP, "pruning") == "for epoch in range(start_epoch, 3):"


def test_a_model_bound_again_after_the_resume_keeps_the_old_place():
    text = HEAD + RESUME + "model = model.float()\n" + LOOP
    assert "model = model.float()" not in prepared_before(text)
