"""A file with several training loops (a tutorial that trains a teacher, then a student;
a recipe that compares two set-ups): the user marks the one to compress with
`# neural-coder: train` on its for/while line, and the others get no hooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.zeros(32).long()), batch_size=8)


def train(model, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):{first}
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()


teacher = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
train(teacher, 2)

student = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
opt = torch.optim.SGD(student.parameters(), lr=0.1)
for epoch in range(2):{second}
    for x, y in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(student(x), y)
        loss.backward()
        opt.step()
torch.save(student.state_dict(), "student.pt")
"""


def rewrite(source: str, approach: str):
    return rewrite_source(Path("script.py"), source, build_options(approach, "runtime", {}, {}))


def test_several_loops_unmarked_are_refused_with_the_marker_as_the_way_out():
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(SCRIPT.format(first="", second=""), "pruning")
    message = str(refused.value)
    assert "several training loops (lines 10, 22)" in message, message
    assert "'# neural-coder: train'" in message, message


@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_the_marked_loop_gets_the_hooks(approach):
    source = SCRIPT.format(first="", second="  # neural-coder: train")
    text, report = rewrite(source, approach)
    assert report.status is Status.TRANSFORMED, report.message
    assert re.search(r"prepare_compression\(\s*student,", text), text
    assert "line 10: a training loop not marked '# neural-coder: train' gets no hooks" in (
        report.warnings
    ), report.warnings
    train_fn = text[text.index("def train(") : text.index("teacher = ")]
    assert "compression_manager" not in train_fn
    again, second = rewrite(text, approach)
    assert again == text and second.status is not Status.TRANSFORMED


def test_a_post_training_fit_follows_the_marked_loop():
    """The teacher's loop in train(): the fit follows it there (and, nothing reading the
    model after it, saves the int8 model)."""
    text, report = rewrite(SCRIPT.format(first="  # neural-coder: train", second=""), "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    train_fn = text[text.index("def train(") : text.index("teacher = ")]
    assert "quantization.fit(model," in train_fn
    assert "quantization.fit(" not in text[text.index("student = ") :]


def test_two_marks_are_refused():
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(
            SCRIPT.format(first="  # neural-coder: train", second="  # neural-coder: train"),
            "pruning",
        )
    assert "2 of them marked" in str(refused.value)


def test_a_post_training_refusal_names_the_marker():
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(SCRIPT.format(first="", second=""), "ptq-static")
    assert "'# neural-coder: train'" in str(refused.value)
