"""Patterns of plain PyTorch examples: a training function called for training and for
evaluation with a flag, step closures built by factory methods, a loss-scaler step beside
a plain one, a manual update with no optimizer, a DDP wrap followed by a device move, and
a local variable that shadows the training function's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

HEAD = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
train_loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]
val_loader = train_loader
"""

FLAG_EPOCH = (
    HEAD
    + """def run_epoch(net, loader, optimizer=None, mode="train"):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        if mode == "train" and optimizer is not None:
            loss.backward()
            optimizer.step()
for epoch in range(2):
    run_epoch(model, train_loader, opt)
    run_epoch(model, val_loader, mode="eval")
"""
)

SCALER_IN_ELSE = (
    HEAD
    + """class Scaler:
    def __call__(self, loss, optimizer):
        loss.backward()
        optimizer.step()
loss_scaler = None
for epoch in range(2):
    for x, y in train_loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if loss_scaler is None:
            loss.backward()
            opt.step()
        else:
            loss_scaler(loss, opt)
"""
)

MANUAL_ONLY = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]
lr = 0.1
for epoch in range(2):
    for x, y in loader:
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
torch.save(model.state_dict(), "m.pt")
"""

DDP_THEN_MOVE = """import torch
def main(distributed, gpu):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    elif gpu is not None:
        model = model.cuda(gpu)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]
    for epoch in range(2):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    torch.save(model.state_dict(), "m.pt")
"""

SHADOWED_TRAIN = """import torch
from torch.utils.data import DataLoader, TensorDataset
def load_data():
    train = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    return DataLoader(train, batch_size=4)
def train(loader, model, opt):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
def main():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = load_data()
    for epoch in range(2):
        train(loader, model, opt)
    torch.save(model.state_dict(), "m.pt")
"""


def _rewrite(text: str, approach: str = "pruning") -> str:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out


def _lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines()]


def _hooked(out: str, step: str) -> bool:
    lines = _lines(out)
    at = lines.index(step)
    return lines[at - 1].endswith("on_before_optimizer_step()  # neural-coder") and lines[
        at + 1
    ].endswith("on_after_optimizer_step()  # neural-coder")


def test_the_flag_picks_the_training_call_and_both_calls_get_the_manager():
    out = _rewrite(FLAG_EPOCH)
    assert _hooked(out, "optimizer.step()")
    assert "run_epoch(model, train_loader, opt, compression_manager=compression_manager)" in out
    assert (
        'run_epoch(model, val_loader, mode="eval", compression_manager=compression_manager)' in out
    )


def test_calls_the_flag_does_not_tell_apart_are_still_refused(tmp_path):
    # two training calls (a warm-up on another loader): no flag tells them apart
    text = FLAG_EPOCH.replace(
        'run_epoch(model, val_loader, mode="eval")', "run_epoch(model, val_loader, opt)"
    )
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 1, result.output
    assert "run_epoch() holds the training step and is called from several places" in result.output
    assert_untouched(path, text)


def test_a_scaler_call_in_the_else_branch_gets_the_hooks_on_its_optimizer():
    out = _rewrite(SCALER_IN_ELSE)
    assert _hooked(out, "opt.step()")
    lines = _lines(out)
    at = lines.index("loss_scaler(loss, opt)")
    assert (
        lines[at - 1]
        == "step_hooks = optimizer_step_hooks(opt, compression_manager)  # neural-coder"
    )
    assert lines[at + 1] == "step_hooks.remove()  # neural-coder"


@pytest.mark.parametrize("approach", ["qat", "pruning+qat", "distillation"])
def test_a_manual_update_without_an_optimizer_is_the_step(approach):
    teacher = {"distillation": {"teacher": "copy"}} if approach == "distillation" else {}
    options = build_options(approach, None, {}, teacher)
    out, report = rewrite_source(Path("s.py"), MANUAL_ONLY, options)
    assert report.status is Status.TRANSFORMED, report
    lines = _lines(out)
    start = lines.index("for p in model.parameters():")
    assert lines[start - 1].endswith("on_before_optimizer_step()  # neural-coder")


def test_qat_is_prepared_before_a_wrap_followed_by_a_device_move():
    out = _rewrite(DDP_THEN_MOVE, "qat")
    lines = _lines(out)
    assert lines.index("model = compression_manager.model  # neural-coder") < lines.index(
        "if distributed:"
    )


def test_a_local_named_like_the_training_function_is_not_the_function():
    out = _rewrite(SHADOWED_TRAIN)
    assert "train(loader, model, opt, compression_manager=compression_manager)" in out
    assert "return DataLoader(train, batch_size=4)" in out


EVALUATE_PATH = """import torch
def validate(loader, net):
    net.eval()
    with torch.no_grad():
        return sum((net(x).argmax(1) == y).float().mean().item() for x, y in loader) / len(loader)
def main(evaluate, resume):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    if resume:
        model.load_state_dict(torch.load(resume))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4
    )
    if evaluate:
        validate(loader, model)
        return
    for epoch in range(2):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        validate(loader, model)
main(False, None)
"""


def test_the_fit_goes_on_the_evaluate_path_when_training_drops_the_model():
    out = _rewrite(EVALUATE_PATH, "ptq-dynamic")
    lines = _lines(out)
    fit = next(
        i for i, line in enumerate(lines) if line.startswith("quantized_model = quantization.fit(")
    )
    assert lines.index("if evaluate:") < fit < lines.index("validate(loader, model)")


def test_an_evaluation_returning_an_evaluator_object_is_no_metric(tmp_path):
    text = EVALUATE_PATH.replace(
        "    with torch.no_grad():\n        return sum(",
        "    meter = Meter()\n    with torch.no_grad():\n        meter.value = sum(",
    ).replace(" / len(loader)\n", " / len(loader)\n    return meter\n", 1)
    text = "class Meter:\n    value = 0.0\n" + text
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic")
    # no metric to tune with, so no fit on the evaluate path; the epoch loop's validate()
    # still runs the model: the fit goes into the last epoch, before it, untuned
    assert result.exit_code == 0, result.output
    out = path.read_text()
    assert "if evaluate:\n        validate(loader, model)\n        return" in out
    assert "        if epoch == 1:  # neural-coder\n            quantized_model = quantization.fit(" in out
    assert "eval_func" not in out
