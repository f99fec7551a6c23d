"""The checks every rewrite passes before anything is written: it compiles, it reads no
name the original did not already leave undefined (CPython's symbol table decides), and a
second run would do nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.analysis import parse_source
from neural_coder.api import _check_idempotent
from neural_coder.errors import NeuralCoderError
from neural_coder.verify import VerificationError, undefined_names, verify_rewrite

PATH = Path("train.py")

BINDINGS = """
import os
import torch.nn as nn
from math import *
from json import dumps as to_json


def train(model, *args, scale=1, **kwargs):
    global steps
    steps = 0
    for epoch, batch in enumerate(args):
        with open(os.devnull) as sink:
            try:
                total = [x * scale for x in batch if (y := x)]
            except ValueError as error:
                print(error, sink, y, total, epoch)
    return lambda z: z + steps + len(kwargs)


class Net(nn.Module):
    width = 4
    sizes = [width]

    def forward(self, x):
        return to_json(x)


print(train, Net, __name__, __file__, steps)
"""


def test_every_kind_of_binding_counts_as_a_definition():
    assert undefined_names(BINDINGS) == set()


def test_names_read_and_never_bound_are_undefined_in_every_scope():
    code = (
        "def f():\n    return helper(model)\n\n"
        "class C:\n    attr = 1\n\n    def m(self):\n        return attr\n\n"  # a class body is no scope for its methods
        "print(loader)\n"
        "g = lambda: other\n"
        "h = [k for k in range(3) if k > limit]\n"
    )
    assert undefined_names(code) == {"helper", "model", "attr", "loader", "other", "limit"}


def test_a_rewrite_reading_a_new_undefined_name_is_refused():
    original = "def train(model):\n    model.step()\n"
    rewritten = (
        "def train(model):\n    cm.callbacks.on_step_begin()  # neural-coder\n    model.step()\n"
    )
    with pytest.raises(VerificationError, match=r"undefined names \(cm\)"):
        verify_rewrite(PATH, original, rewritten)


def test_names_the_original_already_left_undefined_are_tolerated():
    original = "print(config)\n"
    verify_rewrite(PATH, original, "import torch\n\nprint(config)\ntorch.manual_seed(0)\n")


@pytest.mark.parametrize(
    "rewritten",
    ["x = (\n", "def f():\n    pass\nreturn 1\n", "def f():\n    await g()\n"],
    ids=["does-not-parse", "return-outside-function", "await-outside-async"],
)
def test_a_rewrite_that_does_not_compile_is_refused(rewritten):
    with pytest.raises(VerificationError, match="does not compile"):
        verify_rewrite(PATH, "x = 1\n", rewritten)


def test_the_second_run_check_reads_the_marker_or_else_analyses_again():
    source = parse_source(PATH, "import torch\n\nmodel = torch.nn.Linear(2, 2)\n")
    marked = source.text + "model.eval()  # neural-coder\n"
    _check_idempotent(source, {PATH: marked})
    # no marker and no compression call: a second run would rewrite it again
    with pytest.raises(NeuralCoderError, match="would be rewritten again"):
        _check_idempotent(source, {PATH: source.text + "model.eval()\n"})
    compressed = source.text + (
        "from neural_coder.runtime.training import prepare_compression\n"
        "manager = prepare_compression(model, [])\n"
    )
    _check_idempotent(source, {PATH: compressed})
