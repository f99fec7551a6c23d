"""A one-epoch training function that nothing in the given file calls (the engine.py of
a research repository): it is compressed as it is, with a warning that its caller,
which runs it once per epoch, is the script to give."""

from __future__ import annotations

from pathlib import Path

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status


def rewrite(source: str, approach: str):
    return rewrite_source(Path("engine.py"), source, build_options(approach, "runtime", {}, {}))


ENGINE = """\
import torch


def train_one_epoch(model, criterion, data_loader, optimizer, device, epoch):
    model.train()
    for samples, targets in data_loader:
        samples, targets = samples.to(device), targets.to(device)
        loss = criterion(model(samples), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_an_uncalled_one_epoch_function_is_compressed_with_a_warning():
    """engine.py of a research repository, given alone: its caller runs it once per epoch,
    so the warning sends the user to that script."""
    text, report = rewrite(ENGINE, "pruning")
    assert report.status is Status.TRANSFORMED, report.message
    assert any(
        "train_one_epoch() makes one pass over its loader and nothing in this file calls it" in w
        for w in report.warnings
    ), report.warnings
    called = (
        ENGINE
        + "\n\nfor epoch in range(2):\n    train_one_epoch(None, None, [], None, 'cpu', epoch)\n"
    )
    _, report = rewrite(called, "pruning")
    assert not any("makes one pass" in w for w in report.warnings), report.warnings
