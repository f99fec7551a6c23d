"""Distillation reads the model's outputs next to the loss. When the loss is computed
straight from the model call (`loss = model(**batch).loss`, `criterion(model(x), y)`),
the call moves into a statement of its own; where moving it could change what runs,
the tool refuses instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status

LOOP = """import torch

model = torch.nn.Linear(4, 2)
criterion = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
for x, y in data:
    {loss}
    loss.backward()
    opt.step()
"""


def rewrite(text: str) -> tuple[str, object]:
    # the models here are random: a frozen copy is asked for explicitly
    options = build_options("distillation", "runtime", {}, {"distillation": {"teacher": "copy"}})
    return rewrite_source(Path("script.py"), text, options)


@pytest.mark.parametrize(
    ("loss", "hoisted", "rewritten_loss"),
    [
        (
            "loss = criterion(model(x), y)",
            "outputs = model(x)",
            "loss = criterion(outputs, y)",
        ),
        ("loss = model(x).sum()", "outputs = model(x)", "loss = outputs.sum()"),
        (
            "loss = criterion(model(input=x), y)",
            "outputs = model(input=x)",
            "loss = criterion(outputs, y)",
        ),
    ],
)
def test_the_model_call_is_assigned_before_the_loss(loss, hoisted, rewritten_loss):
    out, report = rewrite(LOOP.format(loss=loss))
    assert report.status is Status.TRANSFORMED, report.message
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(f"{hoisted}  # neural-coder")
    assert lines[at + 1] == rewritten_loss
    assert lines[at + 2].startswith("loss = compression_manager.callbacks.on_after_compute_loss(")
    assert rewrite(out)[1].status is Status.UNCHANGED
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)  # the rewritten loop runs
    assert namespace["compression_manager"].model is not None


def test_the_hoisted_name_does_not_clash_with_the_script():
    text = LOOP.format(loss="loss = criterion(model(x), y)") + "outputs = []\n"
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    assert "nc_outputs = model(x)  # neural-coder" in out
    assert "loss = criterion(nc_outputs, y)" in out


@pytest.mark.parametrize(
    "loss",
    [
        "loss = criterion(model(x), y) if len(y) else torch.zeros(())",
        "loss = criterion(model(x), y) + criterion(model(x * 2), y)",
        "loss = sum(criterion(model(a), y) for a in [x])",
    ],
)
def test_a_model_call_that_cannot_move_is_refused(loss):
    with pytest.raises(AnalysisError, match="the model call is not assigned to a name"):
        rewrite(LOOP.format(loss=loss))


def test_a_model_that_returns_its_loss_is_refused():
    with pytest.raises(AnalysisError, match="the model call returns the loss itself"):
        rewrite(LOOP.format(loss="loss = model(x)"))


ACCUMULATING = """import torch

model = torch.nn.Linear(4, 2)
criterion = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
accum = 2
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 4
for i, (x, y) in enumerate(data):
    out = model(x)
    {loss}
    loss.backward()
    if (i + 1) % accum == 0:
        opt.step()
        opt.zero_grad()
"""


def test_under_accumulation_the_teacher_term_is_scaled_like_the_student_loss():
    out, report = rewrite(ACCUMULATING.format(loss="loss = criterion(out, y) / accum"))
    assert report.status is Status.TRANSFORMED, report.message
    assert "on_after_compute_loss(x, out, loss * accum) / accum  # neural-coder" in out
    assert rewrite(out)[1].status is Status.UNCHANGED
    exec(compile(out, "script.py", "exec"), {})  # the accumulating loop runs


def test_a_later_division_by_the_accumulation_factor_scales_both_terms():
    out, _ = rewrite(ACCUMULATING.format(loss="loss = criterion(out, y)\n    loss /= accum"))
    hook = "    loss = compression_manager.callbacks.on_after_compute_loss(x, out, loss)  # neural-coder\n"
    assert hook + "    loss /= accum\n" in out


def test_a_division_that_is_not_the_accumulation_factor_is_left_alone():
    out, _ = rewrite(ACCUMULATING.format(loss="loss = criterion(out, y) / 3"))
    assert "on_after_compute_loss(x, out, loss)  # neural-coder" in out


TWO_HEADS = """import torch
import torch.nn.functional as F


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cls = torch.nn.Linear(4, 3)
        self.reg = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.cls(x), self.reg(x).squeeze(-1)


model = TwoHeads()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [(torch.randn(8, 4), torch.randint(0, 3, (8,)), torch.randn(8))]
for x, y, t in data:
    logits, pred = model(x)
    losses = {"ce": F.cross_entropy(logits, y), "mse": F.mse_loss(pred, t)}
    loss = sum(losses.values())
    loss.backward()
    opt.step()
"""


def test_a_loss_built_through_a_dict_of_losses_is_traced_back_to_the_model_call():
    """The first output of a tuple (the logits) is what distillation compares."""
    out, report = rewrite(TWO_HEADS)
    assert report.status is Status.TRANSFORMED, report.message
    assert (
        "    loss = sum(losses.values())\n    loss = compression_manager.callbacks.on_after_compute_loss(x, logits, loss)  # neural-coder\n"
        in out
    )
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)


READ_LOOP = """import torch
import torch.nn.functional as F


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x, return_dict=True):
        logits = self.fc(x)
        return {{"logits": logits}} if return_dict else (logits,)


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 2
for x, y in data:
    {call}
    loss = F.cross_entropy(pred, y)
    loss.backward()
    opt.step()
"""


@pytest.mark.parametrize(
    ("call", "named", "read"),
    [
        (
            "pred = model(x, return_dict=False)[0]",
            "outputs = model(x, return_dict=False)",
            "pred = outputs[0]",
        ),
        ('pred = model(x)["logits"]', "outputs = model(x)", 'pred = outputs["logits"]'),
        (
            'pred = model(x)["logits"][:, :2]',
            "outputs = model(x)",
            'pred = outputs["logits"][:, :2]',
        ),
    ],
)
def test_a_prediction_read_from_the_model_call_names_the_whole_output(call, named, read):
    """The runtime calls the teacher as the student is called (keywords included) and
    reads the logits of both whole outputs, so they pair."""
    out, report = rewrite(READ_LOOP.format(call=call))
    assert report.status is Status.TRANSFORMED, report.message
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(f"{named}  # neural-coder")
    assert lines[at + 1] == read
    inputs = "ModelInputs(x,return_dict=False)" if "return_dict" in named else "x"
    assert f"on_after_compute_loss({inputs},outputs,loss)" in "".join(out.split())
    assert rewrite(out)[1].status is Status.UNCHANGED
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)
    assert namespace["compression_manager"].summary["distillation_steps"] == 2


def test_a_read_the_loss_does_not_compare_is_refused_with_the_field_named():
    text = READ_LOOP.format(call="pred = model(x, return_dict=False)[1]")
    with pytest.raises(
        AnalysisError, match=r"the student's prediction is model\(x, return_dict=False\)\[1\]"
    ):
        rewrite(text)


def test_an_output_bound_anew_before_the_loss_is_kept_as_the_model_returned_it():
    text = READ_LOOP.format(call="pred = model(x, return_dict=False)[0]\n    pred = pred[:, :2]")
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    text = READ_LOOP.format(call="pred = model(x)\n    pred = pred['logits'][:, :2]")
    out, report = rewrite(text)
    assert "    student_output = pred  # neural-coder\n    pred = pred['logits'][:, :2]\n" in out
    assert "on_after_compute_loss(x, student_output, loss)" in out
    assert rewrite(out)[1].status is Status.UNCHANGED
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)
    assert namespace["compression_manager"].summary["distillation_steps"] == 2


def test_an_output_changed_in_place_before_the_loss_is_refused():
    text = READ_LOOP.format(call="pred = model(x)\n    pred['logits'] = pred['logits'][:, :2]")
    with pytest.raises(AnalysisError, match=r"changed in place at line \d+ \(pred\['logits'\] = "):
        rewrite(text)


def test_a_loss_divided_inside_the_backward_call_is_the_loss():
    """`accelerator.backward(loss / accumulation)` (Fabric, accelerate): `loss` is the loss."""
    text = LOOP.format(loss="out = model(x)\n    loss = criterion(out, y)").replace(
        "loss.backward()", "(lambda t: t.backward())(loss / 2)"
    )
    text = text.replace("(lambda t: t.backward())(loss / 2)", "engine.backward(loss / 2)")
    text = text.replace(
        "for x, y",
        "class Engine:\n    def backward(self, t):\n        t.backward()\n\n\nengine = Engine()\nfor x, y",
    )
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    assert (
        "on_after_compute_loss(x, out, loss)  # neural-coder\n    engine.backward(loss / 2)" in out
    )


FIELD_BACKWARD = """import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x, y):
        logits = self.fc(x)
        return {{"loss": torch.nn.functional.cross_entropy(logits, y), "logits": logits}}


model = torch.nn.DataParallel(Net())
opt = torch.optim.SGD(model.parameters(), lr=0.1)
accum_steps = 2
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
for x, y in data:
    outputs = model(x, y)
    {backward}
    opt.step()
"""


@pytest.mark.parametrize(
    ("backward", "rewritten"),
    [
        ('outputs["loss"].mean().backward()', "loss.mean().backward()"),
        ('outputs["loss"].sum().backward()', "loss.sum().backward()"),
        ('(outputs["loss"] / accum_steps).backward()', "(loss / accum_steps).backward()"),
    ],
)
def test_a_reduced_field_of_the_outputs_is_the_loss(backward, rewritten):
    """DataParallel's `outputs.loss.mean().backward()` was refused as "the model call
    returns the loss itself": the field is the loss, and the reduction applies to the loss
    that replaces it as it did to the field."""
    out, report = rewrite(FIELD_BACKWARD.format(backward=backward))
    assert report.status is Status.TRANSFORMED, report.message
    assert 'loss = outputs["loss"]  # neural-coder' in out
    assert "on_after_compute_loss((x, y), outputs, loss)" in out
    assert f"    {rewritten}\n" in out
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)
    assert namespace["compression_manager"].model is not None


def test_a_loss_computed_inside_the_backward_expression_is_refused_for_that_reason():
    text = FIELD_BACKWARD.format(backward='(outputs["loss"] * 2).sum().backward()')
    with pytest.raises(AnalysisError) as refused:
        rewrite(text)
    message = str(refused.value)
    assert "returns the loss itself" not in message
    assert '.backward() is called on (outputs["loss"] * 2).sum()' in message
    assert "name the loss first" in message
