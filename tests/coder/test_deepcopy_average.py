"""A moving average kept in a plain `copy.deepcopy(model)` and averaged by the script's own
code: before, nothing found it, and QAT, pruning and PTQ left the copy the script
evaluates and saves uncompressed, silently. A copy that only takes the model's weights
whole, or that the training step runs (a teacher, a target network), is no such average."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import copy
import torch

HELPER
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
ema_model = copy.deepcopy(model)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
decay = 0.9
for epoch in range(2):
    for x, y in [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]:
        LOSS
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        UPDATE
torch.save(ema_model.state_dict(), "ema.pt")
"""
LOADER = """loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(6, 4), torch.tensor([0, 1] * 3)), batch_size=3
)
"""
LOSS = "loss = torch.nn.functional.cross_entropy(model(x), y)"

AVERAGING = {
    "mul_add": "for e, p in zip(ema_model.parameters(), model.parameters()):\n"
    "            e.mul_(decay).add_(p.detach(), alpha=1 - decay)",
    "lerp": "for e, p in zip(ema_model.parameters(), model.parameters()):\n"
    "            e.data.lerp_(p.data, 1 - decay)",
    "copy_of_a_weighted_sum": "for e, p in zip(ema_model.state_dict().values(), "
    "model.state_dict().values()):\n"
    "            e.copy_(decay * e + (1 - decay) * p)",
    "data_assigned": "for e, p in zip(ema_model.parameters(), model.parameters()):\n"
    "            e.data = decay * e.data + (1 - decay) * p.data",
    "state_dict_items": "msd = model.state_dict()\n"
    "        for k, v in ema_model.state_dict().items():\n"
    "            v *= decay\n"
    "            v += (1 - decay) * msd[k].detach()",
    "foreach_lerp": "torch._foreach_lerp_(list(ema_model.parameters()), "
    "list(model.parameters()), 1 - decay)",
    "helper": "update_ema(ema_model, model, decay)",
    "helper_given_the_weights": "update_ema(ema_model.parameters(), model.parameters(), decay)",
}
HELPERS = {
    "helper": "@torch.no_grad()\ndef update_ema(ema, net, d):\n"
    "    ema_params, net_params = list(ema.parameters()), list(net.parameters())\n"
    "    torch._foreach_mul_(ema_params, d)\n"
    "    torch._foreach_add_(ema_params, net_params, alpha=1 - d)\n",
    "helper_given_the_weights": "def update_ema(targets, sources, rate):\n"
    "    for targ, src in zip(targets, sources):\n"
    "        targ.detach().mul_(rate).add_(src, alpha=1 - rate)\n",
}


def script(update: str, helper: str = "", loss: str = LOSS) -> str:
    return SCRIPT.replace("HELPER", helper).replace("UPDATE", update).replace("LOSS", loss)


def rewrite(text: str, approach: str) -> tuple[str, list[str]]:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.warnings


@pytest.mark.parametrize("style", AVERAGING)
def test_a_deep_copy_averaged_by_the_script_is_a_moving_average(style):
    text = script(AVERAGING[style], HELPERS.get(style, ""))
    # before: pruning left the saved copy dense, QAT left it float, both silently (then
    # QAT was refused); now QAT prepares before the copy and rebinds it to its int8 module
    out, _ = rewrite(text, "pruning")
    assert "compression_manager.track_copy(ema_model)  # neural-coder" in out
    got = rewrite(text, "qat")[0].splitlines()
    built = next(i for i, line in enumerate(got) if "ema_model = copy.deepcopy(model)" in line)
    assert "model = compression_manager.model" in got[built - 1]
    assert "compression_manager.track_copy(ema_model)" in got[built + 1]
    end = next(i for i, line in enumerate(got) if "callbacks.on_train_end()" in line)
    assert "ema_model = compression_manager.converted_copy(ema_model)" in got[end + 1]


@pytest.mark.parametrize(
    "update",
    [
        "",  # a frozen snapshot of the model
        "ema_model.load_state_dict(model.state_dict())",  # taken whole, now and then
        "for e, p in zip(ema_model.parameters(), model.parameters()):\n            e.copy_(p)",
        "for e in ema_model.parameters():\n            e.mul_(decay)",  # not from the model
    ],
)
def test_a_deep_copy_that_is_not_averaged_from_the_model_is_left_alone(update):
    out, warnings = rewrite(script(update or "pass"), "qat")
    assert "track_copy" not in out
    assert not any("moving average" in w for w in warnings), warnings


def test_an_averaged_copy_the_training_step_runs_is_part_of_training():
    # a mean teacher (or BYOL / DDPG's target network): the step runs it, the script
    # trains and saves around it, and only the note on the average stays
    loss = (
        "with torch.no_grad():\n            soft = ema_model(x).softmax(1)\n"
        "        out = model(x)\n"
        "        loss = torch.nn.functional.cross_entropy(out, y) + "
        "((out.softmax(1) - soft) ** 2).mean()"
    )
    out, warnings = rewrite(script(AVERAGING["mul_add"], loss=loss), "qat")
    assert "prepare_compression(" in out
    assert any("a copy follows model as a moving average" in w for w in warnings), warnings


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
def test_post_training_quantizes_the_averaged_copy_the_script_saves(approach):
    text = (
        script(AVERAGING["lerp"])
        .replace("model = torch.nn.Sequential", LOADER + "model = torch.nn.Sequential")
        .replace(
            "for x, y in [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]:", "for x, y in loader:"
        )
    )
    out, warnings = rewrite(text, approach)
    assert "fit(\n    ema_model," in out or "fit(ema_model," in out
    assert "ema_model = quantized_model if quantized_model is not None else ema_model" in out
    assert out.index("ema_model = quantized_model") < out.index("torch.save(ema_model")


TRAINER = """import copy
import torch
import torch.nn as nn


class Trainer:
    def __init__(self, model, loader, decay=0.9):
        self.model = model
        self.loader = loader
        self.decay = decay
        self.ema_model = copy.deepcopy(model)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    @torch.no_grad()
    def _update_ema(self):
        for e, p in zip(self.ema_model.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - self.decay)

    def fit(self):
        for epoch in range(2):
            for x, y in self.loader:
                loss = nn.functional.cross_entropy(self.model(x), y)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self._update_ema()
        torch.save(self.ema_model.state_dict(), "ema.pt")


model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
Trainer(model, [(torch.randn(4, 8), torch.randint(0, 4, (4,)))]).fit()
"""


def test_a_trainer_that_deep_copies_the_model_it_keeps_tracks_the_copy():
    # `self.model = model; self.ema_model = copy.deepcopy(model)`: the copy of self.model
    out, _ = rewrite(TRAINER, "pruning")
    assert "        self.compression_manager.track_copy(self.ema_model)  # neural-coder" in out
    with pytest.raises(NeuralCoderError, match=r"copy.deepcopy\(model\) at line 11 keeps"):
        rewrite(TRAINER, "qat")
