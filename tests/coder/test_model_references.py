"""How the loop names its model: through a method that computes the loss
(`self._loss_step(batch)`), through a local alias (`model = self.model`), or as a
module the class receives from whoever builds it. Before/after and no-op checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import script_path


def rewrite(text: str, approach: str) -> str:
    teacher = "copy" if "distillation" in approach else None
    options = build_options(approach, None, {}, {"distillation": {"teacher": teacher}})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out


def code_lines(text: str) -> list[str]:
    return [line.split("  # neural-coder")[0].strip() for line in text.splitlines()]


@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_the_model_called_by_a_loss_method_is_the_trained_model(approach):
    out = rewrite(script_path("recipe_loss_step.py").read_text(), approach)
    lines = code_lines(out)
    prepare = next(i for i, line in enumerate(lines) if "prepare_compression(" in line)
    epoch_loop = lines.index("for epoch in range(self.total_epochs):")
    assert lines[prepare].startswith("self.compression_manager = prepare_compression(")
    assert "self._model" in " ".join(lines[prepare : prepare + 3])
    assert prepare < epoch_loop
    step = lines.index("self._optimizer.step()")
    assert lines[step - 1] == "self.compression_manager.callbacks.on_before_optimizer_step()"
    if approach == "qat":
        assert "self._model = self.compression_manager.model" in lines


def test_distillation_says_where_the_model_is_called():
    with pytest.raises(NeuralCoderError, match=r"called inside FinetuneRecipe._loss_step\(\)"):
        rewrite(script_path("recipe_loss_step.py").read_text(), "distillation")


TRAINER = """import torch
import torch.nn as nn


def evaluate(model):
    return model(torch.randn(2, 4)).sum().item()


class Trainer:
    def __init__(self, model, data):
        self.model = model
        self.data = data
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def run(self):
        model, data = self.model, self.data
        for epoch in range(2):
            for x, y in data:
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                self.optimizer.step()


data = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]
"""


def test_qat_through_a_local_alias_reaches_the_attribute():
    """`model = self.model` in run(): QAT re-binds both, so trainer.model is the QAT model."""
    out = rewrite(
        TRAINER + "trainer = Trainer(nn.Linear(4, 2), data)\ntrainer.run()\n"
        "print(evaluate(trainer.model))\n",
        "qat",
    )
    lines = code_lines(out)
    rebound = lines.index("model = self.compression_manager.model")
    assert lines[rebound + 1] == "self.model = model"


@pytest.mark.parametrize(
    ("caller", "kept_outside"),
    [
        (
            "net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\ntrainer = Trainer(net, data)\ntrainer.run()\n"
            "print(evaluate(net))\n",
            True,
        ),
        (
            "net = nn.Linear(4, 2)\ntrainer = Trainer(net, data)\ntrainer.run()\nprint(evaluate(trainer.model))\n",
            False,
        ),
        ("trainer = Trainer(nn.Linear(4, 2), data)\ntrainer.run()\n", False),
        ("", True),  # built in another file: its callers keep the module they passed
    ],
)
def test_qat_on_a_model_the_class_receives(caller, kept_outside):
    """Where the builder goes on with the module it passed, the bundled runtime prepares
    and converts that module in place; INC, which hands back a new module, is refused."""
    text = TRAINER + caller
    out = rewrite(text, "qat")
    lines = code_lines(out)
    if not kept_outside:
        assert "self.model = model" in lines
        return
    assert "self.model = model" not in lines[lines.index("def run(self):") :]
    assert "QuantizationAwareTrainingConfig(), in_place=True" in " ".join(out.split()), out
    inc = build_options("qat", "inc", {}, {})
    with pytest.raises(
        NeuralCoderError, match="Trainer.__init__\\(\\) receives as its parameter 'model'"
    ):
        rewrite_source(Path("s.py"), text, inc)
    assert "prepare_compression" in rewrite(text, "pruning")


EMA = """import argparse
import torch
from timm.utils import ModelEma

parser = argparse.ArgumentParser()
parser.add_argument("--model-ema", action="store_true")
args = parser.parse_args()
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
EMA_LINE
for epoch in range(2):
    for x, y in [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if args.model_ema:
            model_ema.update(model)
torch.save(model_ema.ema.state_dict() if args.model_ema else model.state_dict(), "m.pt")
"""


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_a_moving_average_copy_of_the_model_is_made_of_the_qat_prepared_model(approach):
    # was refused (the copy stayed float): the manager is now prepared before the copy is
    # built, and the runtime converts the copy to int8 with the model
    text = EMA.replace("EMA_LINE", "model_ema = ModelEma(model, decay=0.999)")
    got = [line.split("  # neural-coder")[0] for line in rewrite(text, approach).splitlines()]
    built = got.index("model_ema = ModelEma(model, decay=0.999)")
    assert got[built - 1] == "model = compression_manager.model"
    assert got[built + 1] == "compression_manager.track_copy(model_ema)"
    assert "model_ema = compression_manager.converted_copy(model_ema)" not in got  # put back
    rewrite(text, "distillation")  # the loss only: the average of the student is fine


def test_a_moving_average_behind_a_flag_that_is_off_by_default_is_tracked_too():
    # (was a warning to run without --model-ema: the copy is converted with the model now)
    text = EMA.replace("EMA_LINE", "if args.model_ema:\n    model_ema = ModelEma(model)")
    options = build_options("qat", None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED
    assert not any("--model-ema" in w for w in report.warnings), report.warnings
    assert "    compression_manager.track_copy(model_ema)  # neural-coder" in out.splitlines()


FIT_METHOD = """import torch
import torch.nn as nn


class Runner:
    def fit(self, model, data):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(2):
            for x, y in data:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


data = [(torch.randn(4, 4), torch.zeros(4).long())]
net = nn.Sequential(nn.Linear(4, 2))
CALL
print(net(torch.randn(2, 4)))
"""


@pytest.mark.parametrize(
    ("call", "in_place"),
    [
        ("runner = Runner()\nrunner.fit(net, data)", True),  # a method: prepared in place
        ("runner = Runner()\nfor seed in range(2):\n    runner.fit(net, data)", False),  # twice
        ("runner = Runner()\nruns = [runner.fit(net, d) for d in (data, data)]", False),
    ],
)
def test_qat_in_a_method_handed_the_model(call, in_place):
    text = FIT_METHOD.replace("CALL", call)
    if in_place:
        out = rewrite(text, "qat")
        assert "QuantizationAwareTrainingConfig(), in_place=True" in " ".join(out.split()), out
        assert "model = compression_manager.model" not in out
        return
    with pytest.raises(NeuralCoderError, match="QAT replaces the model"):
        rewrite_source(Path("s.py"), text, build_options("qat", None, {}, {}))
