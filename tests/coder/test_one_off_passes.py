"""A backward pass outside any loop (a gradient check, a debugging dump before
training), and a mixed-precision context entered by name (`with ctx:`), in scripts
laid out under `if __name__ == "__main__":` with micro-steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import torch
from contextlib import nullcontext

if __name__ == "__main__":
    device = "cpu"
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctx = CONTEXT
    batches = [(torch.randn(3, 4), torch.tensor([0, 1, 0])) for _ in range(4)]
    x, y = batches[0]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    print("reference gradient norm", model.weight.grad.norm().item())
    optimizer.zero_grad()
    for step in range(3):
        for micro_step in range(2):
            x, y = batches[micro_step]
            with ctx:
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
            loss = loss / 2
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.save(model.state_dict(), "final.pt")
"""
FP32 = "nullcontext()"


def rewrite(text: str, approach: str):
    teacher = "copy" if "distillation" in approach else None
    options = build_options(approach, None, {}, {"distillation": {"teacher": teacher}})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report


@pytest.mark.parametrize("approach", ["pruning", "qat", "distillation"])
def test_a_one_off_backward_before_the_loop_is_left_alone(approach):
    out, report = rewrite(SCRIPT.replace("CONTEXT", FP32), approach)
    assert any("line 12: a backward pass outside any loop" in w for w in report.warnings)
    lines = [line.strip() for line in out.splitlines()]
    one_off = lines.index('print("reference gradient norm", model.weight.grad.norm().item())')
    step = lines.index("optimizer.step()")
    assert lines[step - 1].startswith("compression_manager.callbacks.on_before_optimizer_step()")
    assert lines[one_off - 1] == "loss.backward()"  # no hook next to the one-off pass
    if approach == "distillation":
        # the teacher sees the training step's inputs and outputs, not the one-off pass's
        hook = "loss = compression_manager.callbacks.on_after_compute_loss(x, logits, loss)"
        assert lines.index(hook + "  # neural-coder") == lines.index("loss = loss / 2") + 1


def test_only_a_backward_outside_any_loop_is_still_refused():
    text = SCRIPT.replace("CONTEXT", FP32).split("    optimizer.zero_grad()\n    for step")[0]
    with pytest.raises(NeuralCoderError, match="not inside a training loop"):
        rewrite(text, "pruning")


def test_qat_under_an_autocast_context_chosen_at_run_time_goes_ahead_on_the_runtime():
    """The runtime's fake-quant modules compute in fp32 under autocast: no warning; INC's
    take fp32 activations only: a warning, as the context is chosen at run time."""
    context = 'torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()'
    out, report = rewrite(SCRIPT.replace("CONTEXT", context), "qat")
    assert not any("mixed precision" in w for w in report.warnings), report.warnings
    assert any("QAT under mixed precision" in p for p in report.placed), report.placed
    options = build_options("qat", "inc", {}, {})
    _, report = rewrite_source(Path("s.py"), SCRIPT.replace("CONTEXT", context), options)
    assert any("INC's QAT fake-quant observers" in w for w in report.warnings), report.warnings


def test_qat_under_an_autocast_context_entered_by_name_is_refused_for_inc_only():
    context = 'torch.autocast("cpu", dtype=torch.bfloat16)'
    rewrite(SCRIPT.replace("CONTEXT", context), "qat")
    options = build_options("qat", "inc", {}, {})
    with pytest.raises(NeuralCoderError, match=r"runs under ctx = torch.autocast \(line 18\)"):
        rewrite_source(Path("s.py"), SCRIPT.replace("CONTEXT", context), options)
    rewrite(SCRIPT.replace("CONTEXT", context), "pruning")
