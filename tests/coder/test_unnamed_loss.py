"""Distillation on a loss that `.backward()` is called on without a name
(`F.cross_entropy(model(x), y).backward()`, `scaler.scale(criterion(model(x), y)).backward()`):
the loss gets a name in a statement of its own before the backward (after the model call's,
where the call is inside it), the distillation hook combines it with the teacher's term,
and the backward reads the combined loss. Revert puts the expression back in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source

LOOP = """import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
criterion = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.amp.GradScaler(enabled=False)


class Engine:  # accelerate's / Fabric's backward(loss)
    def backward(self, tensor):
        tensor.backward()


engine = Engine()
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
for epoch in range(2):
    for x, y in data:
        opt.zero_grad()
        {step}
        opt.step()
"""


def rewrite(text: str, approach: str = "distillation") -> tuple[str, object]:
    # the models here are random: a frozen copy is asked for explicitly
    options = build_options(approach, "runtime", {}, {"distillation": {"teacher": "copy"}})
    return rewrite_source(Path("script.py"), text, options)


def steps_of(rewritten: str) -> list[str]:
    lines = [line.strip() for line in rewritten.splitlines()]
    start = lines.index("opt.zero_grad()") + 1
    return lines[start : lines.index("opt.step()") - 1]  # without on_before_optimizer_step


HOOK = (
    "loss = compression_manager.callbacks.on_after_compute_loss(x, outputs, loss)  # neural-coder"
)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            "F.cross_entropy(model(x), y).backward()",
            ["outputs = model(x)  # neural-coder",
             "loss = F.cross_entropy(outputs, y)  # neural-coder", HOOK, "loss.backward()"],
        ),
        (
            "criterion(model(x), y).backward(retain_graph=False)",
            ["outputs = model(x)  # neural-coder",
             "loss = criterion(outputs, y)  # neural-coder", HOOK,
             "loss.backward(retain_graph=False)"],
        ),
        (
            "scaler.scale(criterion(model(x), y)).backward()",
            ["outputs = model(x)  # neural-coder",
             "loss = criterion(outputs, y)  # neural-coder", HOOK,
             "scaler.scale(loss).backward()"],
        ),
        (
            "engine.backward(criterion(model(x), y))",
            ["outputs = model(x)  # neural-coder",
             "loss = criterion(outputs, y)  # neural-coder", HOOK,
             "engine.backward(loss)"],
        ),
        (
            "(criterion(model(x), y) + 0.01 * torch.ones(()).sum()).backward()",
            ["outputs = model(x)  # neural-coder",
             "loss = criterion(outputs, y) + 0.01 * torch.ones(()).sum()  # neural-coder", HOOK,
             "loss.backward()"],
        ),
        (
            "outputs = model(x)\n        (criterion(outputs, y) + 0.01 * outputs.pow(2).mean()).backward()",
            ["outputs = model(x)",
             "loss = criterion(outputs, y) + 0.01 * outputs.pow(2).mean()  # neural-coder", HOOK,
             "loss.backward()"],
        ),
    ],
)  # fmt: skip
def test_the_unnamed_loss_is_named_distilled_and_reverted(step, expected):
    original = LOOP.format(step=step)
    out, report = rewrite(original)
    assert report.status is Status.TRANSFORMED, report.message
    assert steps_of(out) == expected
    assert rewrite(out)[1].status is Status.UNCHANGED
    assert revert_source(Path("script.py"), out)[0] == original
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)  # the rewritten loop runs
    assert namespace["compression_manager"].summary["distillation_steps"] == 6


def test_the_new_names_do_not_clash_with_the_script():
    original = LOOP.format(step="F.cross_entropy(model(x), y).backward()") + (
        "loss = outputs = None\n"
    )
    out, report = rewrite(original)
    assert report.status is Status.TRANSFORMED, report.message
    assert steps_of(out)[:2] == [
        "nc_outputs = model(x)  # neural-coder",
        "nc_loss = F.cross_entropy(nc_outputs, y)  # neural-coder",
    ]
    assert "nc_loss.backward()" in out
    assert revert_source(Path("script.py"), out)[0] == original


ACCUMULATING = """import torch

model = torch.nn.Linear(4, 2)
criterion = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(4)]
accumulation = 2
for epoch in range(2):
    for i, (x, y) in enumerate(data):
        (criterion(model(x), y) / accumulation).backward()
        if (i + 1) % accumulation == 0:
            opt.step()
            opt.zero_grad()
"""


def test_a_loss_divided_for_accumulation_scales_the_teacher_term_too():
    out, report = rewrite(ACCUMULATING)
    assert report.status is Status.TRANSFORMED, report.message
    assert "        loss = criterion(outputs, y) / accumulation  # neural-coder\n" in out
    assert "on_after_compute_loss(x, outputs, loss * accumulation)\n" in out
    assert revert_source(Path("script.py"), out)[0] == ACCUMULATING
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)
    assert namespace["compression_manager"].summary["distillation_steps"] == 8


@pytest.mark.parametrize(
    ("step", "why"),
    [
        # the model runs twice in it: which output would the teacher's be compared with
        (
            "(criterion(model(x), y) + model(x).pow(2).mean()).backward()",
            "the model call is not assigned to a name before the loss",
        ),
        # computed on some paths only
        ("model(x).sum().backward() if len(y) else None", "runs only on some paths"),
    ],
)
def test_a_loss_that_cannot_be_named_soundly_is_refused(step, why):
    with pytest.raises(AnalysisError, match=why) as raised:
        rewrite(LOOP.format(step=step))
    assert "output = model(x)" in (raised.value.hint or "")


def test_other_approaches_leave_the_unnamed_loss_as_it_is():
    original = LOOP.format(step="F.cross_entropy(model(x), y).backward()")
    out, report = rewrite(original, "qat")
    assert report.status is Status.TRANSFORMED, report.message
    assert "        F.cross_entropy(model(x), y).backward()\n" in out


HF_LOOP = """import torch
from accelerate import Accelerator
from transformers import BertConfig, BertForSequenceClassification

accelerator = Accelerator()
model = BertForSequenceClassification(BertConfig())
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
for epoch in range(2):
    for batch in loader:
        outputs = model(**batch)
        {backward}
        optimizer.step()
        optimizer.zero_grad()
"""


@pytest.mark.parametrize(
    ("backward", "loss", "named_backward"),
    [
        ("outputs.loss.backward()", "outputs.loss", "{}.backward()"),
        ('outputs["loss"].backward()', 'outputs["loss"]', "{}.backward()"),
        ("outputs[0].backward()", "outputs[0]", "{}.backward()"),
        ("accelerator.backward(outputs.loss)", "outputs.loss", "accelerator.backward({})"),
    ],
)
def test_the_loss_field_of_a_model_output_is_named_and_distilled(backward, loss, named_backward):
    """`outputs.loss.backward()` (a Hugging Face model given its labels): the loss is the
    field, the model's outputs are `outputs`. It was refused as "the model call returns
    the loss itself", and `accelerator.backward(outputs.loss)` as "cannot tell which model
    the loop trains" for every approach."""
    text = HF_LOOP.format(backward=backward)
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    steps = [line.strip() for line in out.splitlines()]
    start = steps.index("outputs = model(**batch)") + 1
    name = steps[start].split(" = ")[0]
    assert steps[start : start + 3] == [
        f"{name} = {loss}  # neural-coder",
        f"{name} = compression_manager.callbacks.on_after_compute_loss(batch, outputs, {name})"
        "  # neural-coder",
        named_backward.format(name),
    ]
    assert rewrite(out)[1].status is Status.UNCHANGED
    assert revert_source(Path("script.py"), out)[0] == text


@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_accelerators_backward_of_the_loss_field_is_the_training_step(approach):
    out, report = rewrite(HF_LOOP.format(backward="accelerator.backward(outputs.loss)"), approach)
    assert report.status is Status.TRANSFORMED, report.message
    assert "compression_manager.callbacks.on_before_optimizer_step()" in out
    assert "accelerator.backward(outputs.loss)\n" in out


def test_a_dict_of_detection_losses_is_still_refused():
    text = HF_LOOP.format(
        backward='loss = outputs["loss_box"] + outputs["loss_cls"]\n        loss.backward()'
    )
    with pytest.raises(AnalysisError, match="holds the model's own losses"):
        out, report = rewrite(text)
        if report.status is not Status.TRANSFORMED:
            raise AnalysisError(report.message)
