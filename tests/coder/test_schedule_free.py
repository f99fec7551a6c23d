"""Schedule-free optimizers (`schedulefree.AdamWScheduleFree`, with `optimizer.train()` /
`optimizer.eval()` around the epochs) are optimizers, not learning-rate schedules: their
`step()` is the loop's optimizer step. Pruning is refused under them (their weight swap
undoes the masks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """\
import schedulefree
import torch
from accelerate import Accelerator


def main():
    accelerator = Accelerator(gradient_accumulation_steps=2)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    loader = torch.utils.data.DataLoader(torch.randn(32, 8), batch_size=4)
    optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=1e-3, warmup_steps=4)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    for epoch in range(2):
        model.train()
        optimizer.train()
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(batch).pow(2).mean()
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        model.eval()
        optimizer.eval()
    torch.save(model.state_dict(), "model.pt")
"""


def optimize(approach: str):
    options = build_options(approach, None, {}, {})
    return rewrite_source(Path("train.py"), SCRIPT, options)


def test_its_step_is_the_optimizer_step():
    rewritten, report = optimize("qat")
    assert report.status is Status.TRANSFORMED
    lines = [line.strip() for line in rewritten.splitlines()]
    step = lines.index("optimizer.step()")
    assert lines[step - 1].startswith("compression_manager.callbacks.on_before_optimizer_step()")
    assert lines[step + 1].startswith("compression_manager.callbacks.on_after_optimizer_step()")


def test_pruning_is_refused_naming_the_optimizer():
    with pytest.raises(AnalysisError, match=r"line 10 .*AdamWScheduleFree.* is schedule-free"):
        optimize("pruning")


TRAINER = """\
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
args = TrainingArguments("out", optim="schedule_free_adamw", learning_rate=1e-3)
trainer = Trainer(model=model, args=args, train_dataset=data)
trainer.train()
"""


def test_a_trainer_with_a_schedule_free_optim_is_not_pruned_but_quantized():
    with pytest.raises(AnalysisError, match="schedule-free optimizer .optim=.schedule_free_adamw"):
        rewrite_source(Path("t.py"), TRAINER, build_options("pruning", None, {}, {}))
    _, report = rewrite_source(Path("t.py"), TRAINER, build_options("qat", None, {}, {}))
    assert report.status is Status.TRANSFORMED
