"""Hooks on every path of a training step, or a refusal at rewrite time that names
the line: AMP or fp32, an optimizer or a manual update, a step function handed to
the loop, a model prepared before the branches that wrap it."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source
from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

HEAD = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]
"""

AMP_BRANCHES = (
    HEAD
    + """scaler = None
for x, y in loader:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
"""
)

MANUAL_ELSE = (
    HEAD
    + """use_optimizer = False
for x, y in loader:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if use_optimizer:
        opt.step()
    else:
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
"""
)

ONE_LINE_ELSE = (
    HEAD
    + """use_optimizer = False
for x, y in loader:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if use_optimizer:
        opt.step()
    else: opt.step()
"""
)

TWO_STEP_LOOPS = (
    HEAD
    + """for epoch in range(2):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if epoch:
            loss.backward()
            opt.step()
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
"""
)

QAT_ON_A_PARAMETER = (
    HEAD
    + """def train(net, epochs):
    for epoch in range(epochs):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
train(model, 2)
torch.save(model.state_dict(), "m.pt")
"""
)

DDP_OF_A_CALL = """import torch
from torch.nn.parallel import DistributedDataParallel as DDP
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]


class Trainer:
    def __init__(self):
        self.model = DDP(torch.nn.Linear(4, 2))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def train(self, epochs):
        for epoch in range(epochs):
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(self.model(x), y)
                loss.backward()
                self.opt.step()
"""

SHARED_BACKWARD = """import torch
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]


class Runner:
    def __init__(self):
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def _backward(self, loss):
        loss.backward()
        self.opt.step()

    def warm_up(self):
        for x, y in loader:
            self._backward(torch.nn.functional.cross_entropy(self.model(x), y))

    def train(self, epochs):
        for epoch in range(epochs):
            for x, y in loader:
                self._backward(torch.nn.functional.cross_entropy(self.model(x), y))
"""


def _rewrite(text: str, approach: str = "pruning") -> str:
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, None, {}, {}))
    assert report.status is Status.TRANSFORMED
    again, second = rewrite_source(Path("s.py"), out, build_options(approach, None, {}, {}))
    assert second.status is Status.UNCHANGED and again == out
    return out


def _hooked(out: str, step: str) -> bool:
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(step)
    return lines[at - 1].endswith("on_before_optimizer_step()  # neural-coder") and lines[
        at + 1
    ].endswith("on_after_optimizer_step()  # neural-coder")


def test_both_amp_branches_get_the_step_hooks():
    out = _rewrite(AMP_BRANCHES)
    assert _hooked(out, "scaler.step(opt)") and _hooked(out, "opt.step()")


def test_a_manual_update_in_the_else_branch_is_a_step():
    out = _rewrite(MANUAL_ELSE)
    assert _hooked(out, "opt.step()")
    lines = [line.strip() for line in out.splitlines()]
    start, end = lines.index("for p in model.parameters():"), lines.index("p -= 0.1 * p.grad")
    assert lines[start - 1].endswith("on_before_optimizer_step()  # neural-coder")
    assert lines[end + 1].endswith("on_after_optimizer_step()  # neural-coder")


@pytest.mark.parametrize(
    ("text", "approach", "message"),
    [
        (ONE_LINE_ELSE, "pruning", "py:11: the optimizer step is on the same line as its 'if'"),
        (TWO_STEP_LOOPS, "pruning", "run in different step loops or functions"),
        (
            QAT_ON_A_PARAMETER.replace("train(model, 2)\n", "train(model, 2)\ntrain(model, 1)\n"),
            "qat",
            "train(), which receives the model as its parameter 'net': QAT replaces the model "
            "with a quantized module, and its callers (lines 11, 12) would go on evaluating and "
            "saving the model passed in, and it cannot be prepared there: it is called from "
            "several places",
        ),
        (
            QAT_ON_A_PARAMETER.replace(
                "train(model, 2)\n", "for _ in range(2):\n    train(model, 2)\n"
            ),
            "qat",
            "it cannot be prepared there: the call at line 12 runs in a loop",
        ),
        (
            SHARED_BACKWARD,
            "pruning",
            "_backward() holds the training step and is called from several places (lines 16, 21)",
        ),
        (
            SHARED_BACKWARD.replace(
                "        for x, y in loader:\n            self._backward(",
                "        x, y = loader[0]\n        self._backward(",
                1,
            ),
            "pruning",
            "_backward() is on the training path (called at line 21) and also called at line 16",
        ),
        (DDP_OF_A_CALL, "qat", "py:8: self.model is wrapped by DDP at line 8 around a model"),
    ],
)
def test_paths_without_hooks_are_refused_at_rewrite_time(tmp_path, text, approach, message):
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert_untouched(path, text)


def test_qat_on_a_parameter_is_prepared_where_the_caller_passes_the_model():
    """Issue 16: the caller keeps `model` after train(model, ...): the manager is prepared
    around the call, the caller's name re-bound to the QAT model, train() gets the manager."""
    out = _rewrite(QAT_ON_A_PARAMETER, "qat")
    lines = [line.split("  #")[0] for line in out.splitlines()]
    call = lines.index("train(model, 2, compression_manager=compression_manager)")
    assert lines[call - 3 : call] == [
        "compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())",
        "compression_manager.callbacks.on_train_begin()",
        "model = compression_manager.model",
    ]
    assert lines[call + 1] == "compression_manager.callbacks.on_train_end()"
    assert lines[call + 2] == 'torch.save(model.state_dict(), "m.pt")'
    assert "def train(net, epochs, compression_manager):" in lines


def test_a_parameter_added_to_a_one_per_line_signature_keeps_the_layout():
    """black's magic trailing comma (litgpt's `fit(\n    ...,\n) -> dict:`): the new
    parameter gets a line of its own with the trailing comma, and revert gives back the
    original byte for byte."""
    text = QAT_ON_A_PARAMETER.replace(
        "def train(net, epochs):\n", "def train(\n    net,\n    epochs,\n) -> None:\n"
    ).replace("train(model, 2)\n", "train(\n    model,\n    2,\n)\n")
    out = _rewrite(text, "qat")
    assert "def train(\n    net,\n    epochs,\n    compression_manager,\n) -> None:\n" in out
    assert "    2,\n    compression_manager=compression_manager,\n)\n" in out
    reverted, _ = revert_source(Path("s.py"), out)
    assert reverted == text


def test_qat_on_a_parameter_wrapped_by_the_caller_is_prepared_before_the_wrap():
    """detectron2 style: `if distributed: model = DDP(model)` then `do_train(model)`: the
    bare model is prepared before the `if`, so every path trains the QAT model."""
    text = QAT_ON_A_PARAMETER.replace(
        "train(model, 2)\n",
        "if torch.distributed.is_initialized():\n"
        "    model = torch.nn.parallel.DistributedDataParallel(model)\n"
        "train(model, 2)\n",
    )
    lines = [line.split("  #")[0] for line in _rewrite(text, "qat").splitlines()]
    branches = lines.index("if torch.distributed.is_initialized():")
    assert lines[branches - 1] == "model = compression_manager.model"
    call = lines.index("train(model, 2, compression_manager=compression_manager)")
    assert lines[call + 1] == "compression_manager.callbacks.on_train_end()"


def test_qat_through_a_function_that_returns_the_model_is_rewritten():
    text = QAT_ON_A_PARAMETER.replace(
        "            opt.step()\n", "            opt.step()\n    return net\n"
    )
    out = _rewrite(text.replace("train(model, 2)", "model = train(model, 2)"), "qat")
    assert "net = compression_manager.model" in out


ONE_CALL_ON_EACH_PATH = """import contextlib
import torch
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))] * 4
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def step(x, y):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()


for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        if i % 2:
            with contextlib.nullcontext():
                step(x, y)
        else:
            step(X_ARG, y)
"""


def test_the_same_step_call_on_each_path_of_the_loop_body_is_one_call_path():
    # large frameworks: `with model.no_sync(): _backward(loss)` under `if`, plain under `else`
    out = _rewrite(ONE_CALL_ON_EACH_PATH.replace("X_ARG", "x"))
    assert out.count("compression_manager.callbacks.on_step_begin(i)") == 1
    assert _hooked(out, "opt.step()")


def test_different_step_calls_in_one_loop_body_stay_refused(tmp_path):
    text = ONE_CALL_ON_EACH_PATH.replace("X_ARG", "x * 2")
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 1 and "is called from several places" in result.output
    assert_untouched(path, text)


STEPPING_METHOD = """import torch


class Trainer:
    def __init__(self):
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))] * 4

    def optimizer_step(self):
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.optimizer.step()
        self.optimizer.zero_grad()

    def train(self):
        for epoch in range(2):
            for x, y in self.loader:
                loss = torch.nn.functional.cross_entropy(self.model(x), y)
                loss.backward()
                self.optimizer_step()


Trainer().train()
"""


def test_a_method_that_steps_the_optimizer_is_hooked_around_its_call():
    out = _rewrite(STEPPING_METHOD)
    lines = [line.strip() for line in out.splitlines()]
    call = lines.index("self.optimizer_step()")
    assert lines[call - 1].endswith("on_before_optimizer_step()  # neural-coder")
    assert lines[call + 1].endswith("on_after_optimizer_step()  # neural-coder")
    assert "self.optimizer.step()" in lines  # the method itself is left as it is
