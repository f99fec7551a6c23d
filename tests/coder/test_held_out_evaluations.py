"""Evaluations that read the model from the scope of their call (`estimate_loss()` of
small GPT trainers) and return one loss per split: before this, a post-training fit on
such a script had no eval_func and converted untuned; now eval_func binds the model's
name to the candidate for the call and tunes on the held-out entry, lower is better."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.analysis.evaluation import find_evaluations
from neural_coder.analysis.index import build_index
from neural_coder.analysis.source import parse_source
from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source

HEADER = """import torch
import torch.nn as nn

xs, ys = torch.randn(32, 6), torch.randn(32, 1)
model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
"""

SPLIT_LOOP = """

@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(2)
        for k in range(2):
            losses[k] = nn.functional.mse_loss(model(xs), ys).item()
        out[split] = losses.mean()
    model.train()
    return out
"""

LITERAL_DICT = """

@torch.no_grad()
def evaluate_splits():
    train = nn.functional.mse_loss(model(xs[:16]), ys[:16]).item()
    held = nn.functional.mse_loss(model(xs[16:]), ys[16:]).item()
    return {"train": train, "valid": held}
"""

TRAIN = """

for step in range(4):
    if step % 2 == 0:
        losses = {call}
        print(losses)
    loss = nn.functional.mse_loss(model(xs), ys)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
torch.save(model.state_dict(), "model.pt")
"""


def evaluations(text: str):
    return find_evaluations(build_index(parse_source(Path("s.py"), text)))


def rewrite(text: str, approach: str = "ptq-dynamic"):
    return rewrite_source(Path("s.py"), text, build_options(approach, "runtime", {}, {}))


@pytest.mark.parametrize(
    ("function", "call", "key"),
    [(SPLIT_LOOP, "estimate_loss()", "val"), (LITERAL_DICT, "evaluate_splits()", "valid")],
)
def test_a_split_keyed_evaluation_of_the_module_model_is_found(function, call, key):
    found = evaluations(HEADER + function + TRAIN.format(call=call))
    assert len(found) == 1
    assert (found[0].model_arg, found[0].key, found[0].reads_model) == ("model", key, True)


def test_the_fit_tunes_on_the_held_out_loss_lower_is_better():
    source = HEADER + SPLIT_LOOP + TRAIN.format(call="estimate_loss()")
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED
    assert "def evaluate_candidate(candidate):  # neural-coder" in text
    assert "    global model  # neural-coder" in text
    assert 'return estimate_loss()["val"]' in text
    assert "eval_func=evaluate_candidate" in text
    assert "higher_is_better=False" in text
    assert "no evaluation of the model was found" not in "\n".join(report.warnings)
    # the function runs before the fit and leaves the trained model bound to `model`
    assert text.index("def evaluate_candidate") < text.index("quantization.fit(")
    again, second = rewrite(text)
    assert second.status is Status.UNCHANGED and again == text
    assert revert_source(Path("s.py"), text)[0] == source


def test_a_nested_evaluation_binds_the_enclosing_model_nonlocal():
    body = HEADER + SPLIT_LOOP + TRAIN.format(call="estimate_loss()")
    indented = "".join(f"    {line}" if line.strip() else line for line in body.splitlines(True))
    source = f"def main():\n{indented}\n\nmain()\n"
    text, report = rewrite(source, "bf16")
    assert report.status is Status.TRANSFORMED, report
    assert "        nonlocal model  # neural-coder" in text
    assert "eval_func=evaluate_candidate" in text
    assert "\n    \n" not in text  # no indented blank lines around the inserted def
    compile(text, "s.py", "exec")
    assert revert_source(Path("s.py"), text)[0] == source


def test_a_module_model_read_from_a_call_inside_another_function_is_not_used():
    """`estimate_loss()` called in train() reads the module's model, not a name of
    train(): no eval_func can bind it there, so it is no evaluation of train()'s model."""
    loop = TRAIN.format(call="estimate_loss()").strip().replace("\n", "\n    ")
    source = HEADER + SPLIT_LOOP + f"\n\ndef train():\n    {loop}\n\n\ntrain()\n"
    assert evaluations(source) == []


@pytest.mark.parametrize(
    "function",
    [
        # outputs keyed by what they are, not by split: no metric
        """

@torch.no_grad()
def collect():
    return {"outputs": model(xs), "targets": ys}
""",
        # a training pass that reports its loss per split trains: no evaluation
        """

def estimate_loss():
    out = {}
    loss = nn.functional.mse_loss(model(xs), ys)
    loss.backward()
    out["val"] = loss.item()
    return out
""",
    ],
)
def test_what_is_no_held_out_evaluation(function):
    name = function.split("def ", 1)[1].split("(", 1)[0]
    assert evaluations(HEADER + function + TRAIN.format(call=f"{name}()")) == []


def test_a_split_keyed_evaluation_that_takes_the_model_reads_its_val_entry():
    function = SPLIT_LOOP.replace("def estimate_loss():", "def estimate_loss(net):").replace(
        "model", "net"
    )
    text, report = rewrite(HEADER + function + TRAIN.format(call="estimate_loss(model)"))
    assert report.status is Status.TRANSFORMED, report.message
    assert 'eval_func=lambda candidate: estimate_loss(candidate)["val"]' in text
    assert "higher_is_better=False" in text and "def evaluate_candidate" not in text


def test_a_model_the_enclosing_function_declares_global_is_not_bound_nonlocal():
    """`def main(): global model; ...; def estimate_loss(): model(...)`: `nonlocal model`
    would not compile, so that evaluation tunes nothing (the fit converts once)."""
    body = HEADER + SPLIT_LOOP + TRAIN.format(call="estimate_loss()")
    indented = "".join(f"    {line}" if line.strip() else line for line in body.splitlines(True))
    source = f"def main():\n    global model\n{indented}\n\nmain()\n"
    assert evaluations(source) == []
    text, report = rewrite(source)
    assert "nonlocal" not in text
    compile(text, "s.py", "exec")
