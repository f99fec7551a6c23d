"""A trainer class trains `self.model` in `fit()` and keeps the best epoch's checkpoint;
the caller loads it back into `trainer.model` after `trainer.fit()` returns (itself, or
through a method of the class). QAT's training ends, and a post-training fit happens,
after that load, as they do after a reload in the loop's own function: before, QAT
converted inside fit() and the fake-quant checkpoint no longer fitted the int8 model,
and PTQ quantized inside fit() so the float checkpoint no longer fitted either."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self):
        data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
        self.train_loader = DataLoader(data, batch_size=8)
        self.val_loader = DataLoader(data, batch_size=8)
        self.model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.best = 0.0

    def load_checkpoint(self, path):
        self.model.load_state_dict(torch.load(path))

    def validate(self):
        return sum((self.model(x).argmax(1) == y).sum().item() for x, y in self.val_loader)

    def fit(self):
        for epoch in range(2):
            for x, y in self.train_loader:
                loss = nn.functional.cross_entropy(self.model(x), y)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            acc = self.validate()
            if acc > self.best:
                self.best = acc
                torch.save(self.model.state_dict(), "best.pt")


def main():
    trainer = Trainer()
    trainer.fit()
{reload}
    print(trainer.validate())


main()
"""

DIRECT = '    trainer.model.load_state_dict(torch.load("best.pt"))'
THROUGH_A_METHOD = '    trainer.load_checkpoint("best.pt")'


def rewrite(source: str, approach: str) -> str:
    text, report = rewrite_source(
        Path("train.py"), source, build_options(approach, "runtime", {}, {})
    )
    assert report.status is Status.TRANSFORMED, report.message
    return text


def line_after(text: str, statement: str) -> str:
    lines = text.splitlines()
    return lines[lines.index(statement) + 1].strip()


@pytest.mark.parametrize("reload", [DIRECT, THROUGH_A_METHOD])
def test_qat_training_ends_after_the_callers_reload(reload):
    text = rewrite(SCRIPT.format(reload=reload), "qat")
    assert line_after(text, reload) == (
        "trainer.compression_manager.callbacks.on_train_end()  # neural-coder"
    )
    assert text.count("on_train_end()") == 1


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
@pytest.mark.parametrize("reload", [DIRECT, THROUGH_A_METHOD])
def test_the_fit_follows_the_callers_reload_on_the_trainers_model(reload, approach):
    text = rewrite(SCRIPT.format(reload=reload), approach)
    after = text.split(reload, 1)[1]
    assert "fit(\n        trainer.model," in after or "fit(trainer.model," in after, after
    assert "self.model = quantized_model" not in text
    assert "trainer.model = quantized_model if quantized_model is not None" in after
    if approach != "ptq-dynamic":
        # the loaders the class sets on self, seen through the object that holds them
        assert "calib_dataloader=trainer.val_loader" in after


def test_without_a_reload_training_still_ends_in_fit():
    text = rewrite(SCRIPT.format(reload=""), "qat")
    assert "        self.compression_manager.callbacks.on_train_end()  # neural-coder" in text
    assert "trainer.compression_manager" not in text


HANDED = (
    SCRIPT.replace(
        "    def __init__(self):\n",
        "    def __init__(self, model, device):\n",
    )
    .replace(
        "        self.model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n",
        "        self.model = model.to(device)\n",
    )
    .replace(
        "    trainer = Trainer()\n",
        "    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        '    trainer = Trainer(model, "cpu")\n',
    )
)


def test_a_model_handed_to_the_trainer_and_moved_there_is_prepared_in_place():
    """`self.model = model.to(device)`: Module.to returns the module itself, so the
    caller's `model` is the trained one (before, only `self.model = model` was seen and
    QAT left the caller's `model` float and untrained)."""
    text = rewrite(HANDED.format(reload='    torch.save(model.state_dict(), "final.pt")'), "qat")
    assert "QuantizationAwareTrainingConfig(), in_place=True" in text


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_a_reload_into_the_callers_own_name_for_the_model_counts(approach):
    """`model.load_state_dict(...)` after `trainer.fit()`, `model` handed to Trainer()."""
    reload = '    model.load_state_dict(torch.load("best.pt"))'
    text = rewrite(HANDED.format(reload=reload), approach)
    after = text.split(reload, 1)[1].splitlines()[1].strip()
    if approach == "qat":
        assert after == "trainer.compression_manager.callbacks.on_train_end()  # neural-coder"
    else:
        assert after.startswith("quantized_model = quantization.fit("), after
