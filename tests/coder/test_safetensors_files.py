"""Under an int8 approach on the bundled runtime, the script's safetensors saves get their
state dict through `tensors_only` and its loads through `state_dict_from_tensors`
(safetensors refuses an int8 or QAT state dict as it is, and drops the recipe); a load
the float-instance reload already reads once is left to `structure_for`. Other
approaches and `--target inc` leave them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source

SCRIPT = """import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
best = None
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    if best is None or loss.item() < best:
        best = loss.item()
        save_file(model.state_dict(), "best.safetensors")
model.load_state_dict(load_file("best.safetensors"))
print(model(torch.randn(1, 8)))
"""


def rewrite(text: str, approach: str, target: str = "runtime") -> tuple[str, list[str]]:
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, target, {}, {}))
    assert report.status is Status.TRANSFORMED, report
    return out, report.placed


@pytest.mark.parametrize("approach", ["qat", "pruning+qat", "ptq-dynamic"])
def test_saves_and_loads_go_through_plain_tensors(approach):
    out, placed = rewrite(SCRIPT, approach)
    assert '        save_file(tensors_only(model.state_dict()), "best.safetensors")\n' in out
    assert 'model.load_state_dict(state_dict_from_tensors(load_file("best.safetensors")))' in out
    assert "import state_dict_from_tensors, tensors_only\n" in out.replace("quantization, ", "")
    assert any(p.startswith("tensors_only:") and "line(s) 16" in p for p in placed), placed
    again, report = rewrite_source(Path("s.py"), out, build_options(approach, "runtime", {}, {}))
    assert again == out and report.status is Status.UNCHANGED
    assert revert_source(Path("s.py"), out)[0] == SCRIPT


def test_the_module_and_keyword_spellings_are_wrapped_too():
    text = (
        SCRIPT.replace(
            "from safetensors.torch import load_file, save_file", "import safetensors.torch as st"
        )
        .replace(
            'save_file(model.state_dict(), "best.safetensors")',
            'st.save_file(tensors=model.state_dict(), filename="best.safetensors")',
        )
        .replace('load_file("best.safetensors")', 'st.load_file("best.safetensors")')
    )
    out, _ = rewrite(text, "qat")
    assert (
        'st.save_file(tensors=tensors_only(model.state_dict()), filename="best.safetensors")' in out
    )
    assert 'state_dict_from_tensors(st.load_file("best.safetensors"))' in out


@pytest.mark.parametrize(
    ("approach", "target"), [("pruning", "runtime"), ("bf16", "runtime"), ("qat", "inc")]
)
def test_no_int8_state_dict_on_the_runtime_leaves_them_as_they_are(approach, target):
    out, placed = rewrite(SCRIPT, approach, target)
    assert "tensors_only" not in out and "state_dict_from_tensors" not in out
    assert not any("tensors" in p for p in placed)


def test_on_inc_the_safetensors_save_of_the_int8_model_is_warned():
    _, report = rewrite_source(Path("s.py"), SCRIPT, build_options("qat", "inc", {}, {}))
    assert any("safetensors save at line(s) 16 fails on INC" in w for w in report.warnings)


def test_a_fresh_instance_reload_is_read_once_for_structure_for():
    text = SCRIPT.replace(
        'model.load_state_dict(load_file("best.safetensors"))\nprint(model(',
        "fresh = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))\n"
        'fresh.load_state_dict(load_file("best.safetensors"))\nprint(fresh(',
    )
    out, _ = rewrite(text, "qat")
    assert (
        'loaded_state = load_file("best.safetensors")  # neural-coder\n'
        "fresh, loaded_state = structure_for(loaded_state, fresh)  # neural-coder\n"
        "fresh.load_state_dict(loaded_state)\n"
    ) in out
    assert "state_dict_from_tensors" not in out
    assert revert_source(Path("s.py"), out)[0] == text


ACCELERATE = """import torch
import torch.nn.functional as F
from accelerate import Accelerator
accelerator = Accelerator()
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
model, optimizer = accelerator.prepare(model, optimizer)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        accelerator.backward(F.cross_entropy(model(x), y))
        optimizer.step()
accelerator.wait_for_everyone()
accelerator.save_model(model, "final")
"""


def test_accelerate_save_model_is_given_the_plain_tensor_view():
    out, _ = rewrite(ACCELERATE, "qat")
    assert 'accelerator.save_model(tensors_only(model), "final")\n' in out
    assert revert_source(Path("s.py"), out)[0] == ACCELERATE
    trainer_style = ACCELERATE.replace("accelerator.save_model(", "trainer.save_model(")
    assert "tensors_only(model)" not in rewrite(trainer_style, "qat")[0]
