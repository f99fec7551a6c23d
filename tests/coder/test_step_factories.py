"""Training steps built by factory functions outside a class: `train_step =
make_train_step(model, loss_fn, optimizer)` returns a closure that the loop calls (or
hands to a loop function). The manager becomes one more parameter of the factory, passed
where it is called, and the model is prepared before that call, so the closure keeps the
prepared model (QAT replaces it)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_train_step(net, criterion, opt):
    def train_step(x, y):
        net.train()
        loss = criterion(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    return train_step


def main():
    loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.zeros(32).long()), batch_size=8)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = make_train_step(model, nn.CrossEntropyLoss(), optimizer)
    for epoch in range(2):
        for x, y in loader:
            step(x, y)
    torch.save(model.state_dict(), "m.pt")


main()
"""


def rewrite(source: str, approach: str):
    return rewrite_source(Path("script.py"), source, build_options(approach, "runtime", {}, {}))


def lines(text: str) -> list[str]:
    return [line.removesuffix("  # neural-coder").rstrip() for line in text.splitlines()]


def test_qat_prepares_the_model_before_the_factory_call_and_passes_the_manager():
    text, report = rewrite(SCRIPT, "qat")
    assert report.status is Status.TRANSFORMED, report.message
    out = lines(text)
    assert "def make_train_step(net, criterion, opt, compression_manager):" in out
    factory = next(i for i, line in enumerate(out) if "= make_train_step(" in line)
    prepare = out.index(
        "    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())"
    )
    assert prepare < out.index("    model = compression_manager.model") < factory
    assert "compression_manager=compression_manager" in " ".join(out[factory : factory + 3])
    # the optimizer-step hooks are inside the closure, reading the factory's parameter
    step = out.index("        opt.step()")
    assert out[step - 1] == "        compression_manager.callbacks.on_before_optimizer_step()"
    assert out[step + 1] == "        compression_manager.callbacks.on_after_optimizer_step()"
    cst.parse_module(text)
    again, second = rewrite(text, "qat")
    assert again == text and second.status is not Status.TRANSFORMED


def test_pruning_keeps_the_user_lines():
    text, report = rewrite(SCRIPT, "pruning")
    assert report.status is Status.TRANSFORMED, report.message
    kept = [line for line in text.splitlines() if not line.endswith("# neural-coder")]
    # only the factory's signature and its call gain the manager
    changed = set(kept) - set(SCRIPT.splitlines())
    assert any(line.startswith("def make_train_step(") for line in changed), changed


def test_a_factory_called_twice_is_not_guessed():
    """Two closures from one factory (two models, or a warm-up): no single training path."""
    source = SCRIPT.replace(
        "    step = make_train_step(model, nn.CrossEntropyLoss(), optimizer)\n",
        "    warm = make_train_step(model, nn.CrossEntropyLoss(), optimizer)\n"
        "    step = make_train_step(model, nn.CrossEntropyLoss(), optimizer)\n",
    )
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, "qat")
    message = str(refused.value)
    assert "make_train_step() builds it at several places (lines 22, 23)" in message, message



SHARED_LOOP = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_step(net, criterion, opt):
    def train_step(x, y):
        net.train()
        loss = criterion(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    return train_step


def make_eval_step(net, criterion):
    def eval_step(x, y):
        net.eval()
        return criterion(net(x), y).item()

    return eval_step


def run_batches(loader, step_fn):
    total = 0.0
    for x, y in loader:
        total += step_fn(x, y)
    return total / len(loader)


loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.zeros(32).long()), batch_size=8)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
step = make_step(model, nn.CrossEntropyLoss(), optimizer)
evaluate = make_eval_step(model, nn.CrossEntropyLoss())
for epoch in range(2):
    run_batches(loader, step)
    with torch.no_grad():
        run_batches(loader, evaluate)
torch.save(model.state_dict(), "m.pt")
"""


@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_a_loop_shared_with_validation_leaves_the_step_hooks_to_the_training_closure(approach):
    """Before: on_step_begin / on_step_end were first and last in run_batches()' loop, so
    the validation batches counted as steps, and run_batches() took the manager."""
    text, report = rewrite(SHARED_LOOP, approach)
    assert report.status is Status.TRANSFORMED, report.message
    out = lines(text)
    start = out.index("    def train_step(x, y):")
    assert out[start + 1] == "        compression_manager.callbacks.on_step_begin(0)"
    ret = out.index("        return loss.item()")
    assert out[ret - 1] == "        compression_manager.callbacks.on_step_end()"
    first = out.index("def run_batches(loader, step_fn):")
    loop = out[first : first + 6]
    assert not any("compression_manager" in line for line in loop)
    assert "    run_batches(loader, step)" in out
    again, second = rewrite(text, approach)
    assert again == text and second.status is not Status.TRANSFORMED
