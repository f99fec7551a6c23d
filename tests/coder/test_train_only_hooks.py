"""Shared train/eval steps: the per-batch hooks run under the step's training condition.

Also the probe's other findings: an inline loss (`F.cross_entropy(model(x), y).backward()`)
is not read as its first argument, and the loop length is read through
`enumerate(pbar := tqdm(loader))`."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

HEAD = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loaders = {"train": [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]}
loaders["val"] = loaders["train"]
"""

ELSE_BRANCH = (
    HEAD
    + """def run(loader, evaluating=False):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if evaluating:
            print(loss.item())
        else:
            loss.backward()
            opt.step()
for epoch in range(2):
    run(loaders["train"])
    run(loaders["val"], evaluating=True)
"""
)

PHASE_ARGUMENT = (
    HEAD
    + """def step(x, y, is_train):
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out, y)
    if is_train:
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()
for epoch in range(2):
    for phase in ["train", "val"]:
        for x, y in loaders[phase]:
            step(x, y, phase == "train")
"""
)

NOT_A_TRAIN_FLAG = (
    HEAD
    + """for epoch in range(2):
    for i, (x, y) in enumerate(loaders["train"]):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if torch.isfinite(loss):
            loss.backward()
        if (i + 1) % 2 == 0:
            opt.step()
"""
)

FOLDS = """import torch
def make_model():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4
)
for fold in range(3):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    torch.save(model.state_dict(), f"fold{fold}.pt")
"""

TQDM_WALRUS = """import torch
from tqdm import tqdm
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4
)
for epoch in range(2):
    for i, (x, y) in enumerate(pbar := tqdm(loader)):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pbar.set_postfix(loss=loss.item())
torch.save(model.state_dict(), "m.pt")
"""


def _rewrite(text: str, approach: str) -> str:
    teacher = {"distillation": {"teacher": "copy"}} if "distillation" in approach else {}
    options = build_options(approach, None, {}, teacher)
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out


def _before(out: str, hook: str) -> str:
    """The line before the one that calls `hook`."""
    lines = [line.strip() for line in out.splitlines()]
    at = next(i for i, line in enumerate(lines) if f"callbacks.{hook}(" in line)
    return lines[at - 1]


def test_an_else_branch_that_trains_guards_the_hooks_with_the_negated_test():
    out = _rewrite(ELSE_BRANCH, "distillation")
    for hook in ("on_step_begin", "on_after_compute_loss", "on_step_end"):
        assert _before(out, hook) == "if not (evaluating):  # neural-coder", hook


def test_a_flag_argument_is_read_at_the_step_loop():
    # `step(x, y, phase == "train")`: the step loop's hooks run under the argument
    out = _rewrite(PHASE_ARGUMENT, "distillation")
    assert _before(out, "on_step_begin") == 'if phase == "train":  # neural-coder'
    assert _before(out, "on_step_end") == 'if phase == "train":  # neural-coder'
    assert _before(out, "on_after_compute_loss") == "if is_train:  # neural-coder"


def test_tests_that_change_within_the_step_are_not_training_conditions():
    out = _rewrite(NOT_A_TRAIN_FLAG, "pruning")
    assert "if torch.isfinite(loss):  # neural-coder" not in out
    assert _before(out, "on_step_begin").startswith("for i, (x, y) in enumerate(")


@pytest.mark.parametrize("approach", ["qat", "pruning"])
def test_an_inline_loss_with_a_model_factory_prepares_the_model(approach):
    out = _rewrite(FOLDS, approach)
    assert "prepare_compression(model," in out.replace("\n", "").replace("    ", "")
    assert "make_model = compression_manager.model" not in out
    # a fresh model per fold: each is prepared in the fold loop, before its epoch loop
    lines = [line.strip() for line in out.splitlines()]
    assert (
        lines.index("model = make_model()")
        < next(i for i, line in enumerate(lines) if "prepare_compression(" in line)
        < lines.index("for epoch in range(2):")
    )


def test_distillation_of_an_inline_loss_names_the_loss_per_fold():
    """The unnamed `F.cross_entropy(model(x), y).backward()` of each fold is named
    (planning/loop_step_hooks.py) so the distillation hook gets the model's output."""
    out = _rewrite(FOLDS, "distillation")
    lines = [line.split("  # neural-coder")[0].strip() for line in out.splitlines()]
    hook = next(i for i, line in enumerate(lines) if "on_after_compute_loss(" in line)
    assert lines[hook + 1].endswith(".backward()"), lines[hook - 2 : hook + 2]


def test_the_run_length_is_read_through_a_named_progress_bar():
    out = _rewrite(TQDM_WALRUS, "pruning")
    assert "end_step=max(1, int(0.8 * (2 * len(loader))))" in out


KERAS_STYLE = """import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)
    def forward(self, x):
        return self.fc(x)
    def fit(self, loader, epochs=2):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        for epoch in range(epochs):
            for x, y in loader:
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self(x), y)
                loss.backward()
                opt.step()
model = Net()
model.fit([(torch.randn(3, 4), torch.tensor([0, 1, 0]))])
torch.save(model.state_dict(), "m.pt")
"""


def test_a_model_that_trains_itself_is_refused_with_a_way_out(tmp_path):
    path = write(tmp_path, KERAS_STYLE)
    result = run_cli("optimize", path, "--approach", "qat")
    assert result.exit_code == 1, result.output
    assert "the training loop is Net.fit(), a method of the model's own class" in result.output
    assert "def fit(model, loader, ...)" in result.output
    assert_untouched(path, KERAS_STYLE)


# the loss reaches the model through a name (`out = self(x)`), or through `self.forward`
# (forward-forward: each `nn.Linear` subclass trains itself with its own optimizer): the
# model is `self`, never a submodule its forward calls (`self.relu`, which has no weights)
SELF_TRAINING_VARIANTS = {
    "named_self_call": KERAS_STYLE.replace(
        "loss = torch.nn.functional.cross_entropy(self(x), y)",
        "out = self(x)\n                loss = torch.nn.functional.cross_entropy(out, y)",
    ),
    "forward_forward_layer": """import torch
class Layer(torch.nn.Linear):
    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.relu = torch.nn.ReLU()
        self.opt = torch.optim.Adam(self.parameters(), lr=0.03)
    def forward(self, x):
        return self.relu(torch.mm(x, self.weight.T) + self.bias.unsqueeze(0))
    def train(self, x_pos, x_neg):
        for i in range(5):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = torch.log(1 + torch.exp(torch.cat([-g_pos + 2, g_neg - 2]))).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()
layer = Layer(8, 4)
layer.train(torch.rand(6, 8), torch.rand(6, 8))
""",
}


@pytest.mark.parametrize("name", sorted(SELF_TRAINING_VARIANTS))
def test_a_model_training_itself_through_a_name_or_forward_is_refused(tmp_path, name):
    source = SELF_TRAINING_VARIANTS[name]
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 1, result.output
    assert "a method of the model's own class that trains `self`" in result.output
    assert "self.relu" not in result.output
    assert_untouched(path, source)


def test_a_trainer_class_forward_that_calls_its_model_still_trains_the_model():
    """`self.forward(batch)` of a class that is not a module is a step of the caller's,
    not the model: the model it calls is the one compressed."""
    source = """import torch
class Runner:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
    def forward(self, x, y):
        return torch.nn.functional.cross_entropy(self.model(x), y)
    def fit(self, loader):
        for epoch in range(2):
            for x, y in loader:
                loss = self.forward(x, y)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
Runner(model).fit([(torch.randn(3, 4), torch.tensor([0, 1, 0]))])
"""
    out = _rewrite(source, "pruning")
    assert "prepare_compression(\n            self.model," in out or "prepare_compression(self.model" in out, out


EARLY_STOPPING = """import copy
import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4
)
best, bad, best_state = float("inf"), 0, None
for epoch in range(50):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    if loss.item() < best:
        best, bad, best_state = loss.item(), 0, copy.deepcopy(model.state_dict())
    else:
        bad += 1
        if bad >= 3:
            break
model.load_state_dict(best_state)
torch.save(model.state_dict(), "m.pt")
"""


def test_early_stopping_warns_that_pruning_may_end_short_of_its_target():
    options = build_options("pruning", None, {}, {})
    last = EARLY_STOPPING.replace("model.load_state_dict(best_state)\n", "")
    out, report = rewrite_source(Path("s.py"), last, options)
    assert report.status is Status.TRANSFORMED, report
    assert any("can stop early (line 20)" in w and "--end-step" in w for w in report.warnings)
    assert "end_step=max(1, int(0.8 * (50 * len(loader))))" in out


def test_pruning_is_one_shot_where_the_best_weights_are_loaded_back():
    # a gradual schedule would leave the early (maybe best) checkpoints less sparse
    options = build_options("pruning", None, {}, {})
    out, report = rewrite_source(Path("s.py"), EARLY_STOPPING, options)
    assert report.status is Status.TRANSFORMED, report
    assert "end_step=1," in out
    assert any("loaded back at line 21: pruning is one-shot" in w for w in report.warnings)
    assert not any("stop early" in w for w in report.warnings)
    # training ends after the best weights are loaded back
    assert out.index("model.load_state_dict(best_state)") < out.index("on_train_end()")
    given = build_options("pruning", None, {"pruning": {"end_step": 4}}, {})
    assert not any(
        "stop early" in w for w in rewrite_source(Path("s.py"), EARLY_STOPPING, given)[1].warnings
    )


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic"])
def test_each_fold_of_a_cross_validation_is_fitted_in_its_iteration(approach):
    # a fresh model per fold, trained, then saved in the fold loop: fitted there, not after
    # the fold loop (where nothing reads the model)
    out = _rewrite(FOLDS, approach)
    lines = [line.rstrip() for line in out.splitlines()]
    fit = next(i for i, line in enumerate(lines) if "quantization.fit(" in line)
    assert lines[fit].startswith("    quantized_model = ")
    assert fit < lines.index('    torch.save(model.state_dict(), f"fold{fold}.pt")')


def test_a_model_moved_in_the_epoch_loop_is_still_fitted_after_all_epochs():
    text = FOLDS.replace(
        "for fold in range(3):\n    model = make_model()\n",
        "model = make_model()\nfor fold in range(3):\n    model = model.to('cpu')\n",
    )
    out = _rewrite(text + 'torch.save(model.state_dict(), "final.pt")\n', "ptq-dynamic")
    fit = next(line for line in out.splitlines() if "quantization.fit(" in line)
    assert fit.startswith("quantized_model = ")  # after the outer loop, at module level


PHASE_DICT = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
loaders = {x: torch.utils.data.DataLoader(data, batch_size=4) for x in ["train", "val"]}
for epoch in range(3):
    for phase in ["train", "val"]:
        for x, y in loaders[phase]:
            with torch.set_grad_enabled(phase == "train"):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                if phase == "train":
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
torch.save(model.state_dict(), "m.pt")
"""


def test_the_run_length_of_a_phase_loop_counts_the_training_phase():
    out = _rewrite(PHASE_DICT, "pruning")
    assert 'end_step=max(1, int(0.8 * (3 * len(loaders["train"]))))' in out


SKIP_WHEN_EVALUATING = (
    HEAD
    + """def run_epoch(net, loader, optimizer=None):
    is_train = optimizer is not None
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        if not is_train:
            continue
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
for epoch in range(2):
    run_epoch(model, loaders["train"], opt)
    run_epoch(model, loaders["val"])
"""
)

MODEL_MODE = (
    HEAD
    + """def run_epoch(net, loader):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        if net.training:
            opt.zero_grad()
            loss.backward()
            opt.step()
for epoch in range(2):
    model.train()
    run_epoch(model, loaders["train"])
    model.eval()
    run_epoch(model, loaders["val"])
"""
)


def test_a_skip_of_evaluation_batches_is_the_training_condition():
    # `is_train = optimizer is not None` tells the calls apart; `if not is_train: continue`
    out = _rewrite(SKIP_WHEN_EVALUATING, "distillation")
    for hook in ("on_step_begin", "on_after_compute_loss", "on_step_end"):
        assert _before(out, hook) == "if is_train:  # neural-coder", hook
    assert 'run_epoch(model, loaders["val"], compression_manager=compression_manager)' in out


def test_the_mode_set_before_each_call_tells_training_from_evaluation():
    out = _rewrite(MODEL_MODE, "pruning")
    assert _before(out, "on_step_begin") == "if net.training:  # neural-coder"
    assert 'run_epoch(model, loaders["train"], compression_manager=compression_manager)' in out


COMPREHENSION_STEP = (
    HEAD
    + """def step(batch, is_train):
    x, y = batch
    loss = torch.nn.functional.cross_entropy(model(x), y)
    if is_train:
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()
for epoch in range(2):
    train_losses = [step(batch, True) for batch in loaders["train"]]
    val_losses = [step(batch, False) for batch in loaders["val"]]
torch.save(model.state_dict(), "m.pt")
"""
)


def test_a_step_run_by_a_comprehension_is_refused_for_training_hooks(tmp_path):
    # the hooks went around the epoch loop's body: once per epoch, and pruning never pruned
    path = write(tmp_path, COMPREHENSION_STEP)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 1, result.output
    assert "the training step runs inside a comprehension" in result.output
    assert "write it as a for loop" in result.output
    assert_untouched(path, COMPREHENSION_STEP)


def test_a_step_run_by_a_comprehension_still_gets_a_post_training_fit():
    out = _rewrite(COMPREHENSION_STEP, "ptq-dynamic")
    fit = out.index("quantization.fit(")
    assert out.index("val_losses = [") < fit < out.index('torch.save(model.state_dict(), "m.pt")')


def test_a_step_loop_stopped_on_a_trigger_warns_too():
    # accelerate's early stopping: `if accelerator.check_trigger(): break` in the step loop
    options = build_options("pruning", None, {}, {})
    text = EARLY_STOPPING.replace(
        "        opt.step()\n", "        opt.step()\n        if stop_now():\n            break\n"
    )
    text = text.replace(
        "        bad += 1\n        if bad >= 3:\n            break\n", "        bad += 1\n"
    )
    _, report = rewrite_source(
        Path("s.py"), text.replace("model.load_state_dict(best_state)\n", ""), options
    )
    assert any("the step loop at line 10 can stop early (line 16)" in w for w in report.warnings)
