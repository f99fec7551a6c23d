"""Calibration (and bf16's timing batch) read the script's DataLoader through a generator
that calls the model the way the training loop does, where the runtime's rule for a plain
batch (its first item; a dict as keyword inputs) would not: pairs given whole
(`model(a, b)`), a batch given whole (`model(batch)`), dict items (`model(batch["a"])`),
inputs by keyword. Loops the rule already matches keep the loader as it is. The samples
run: tests/e2e/test_calibration_feeds.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source
from tests.conftest import script_path

SCRIPT = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 8)

    def forward(self, idx, targets=None):
        return self.fc(self.embed(idx).mean(1))


device = "cpu"
model = Net()
loader = DataLoader(TensorDataset(torch.randint(0, 20, (16, 5)), torch.randint(0, 20, (16, 5))))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for {target} in {iterable}:
{body}        loss = out.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def script(target: str, call: str, iterable: str = "loader", before: str = "") -> str:
    body = "".join(f"        {line}\n" for line in before.splitlines()) + f"        out = {call}\n"
    return SCRIPT.format(target=target, iterable=iterable, body=body)


def rewrite(source: str, approach: str = "ptq-static", target: str = "runtime"):
    return rewrite_source(Path("train.py"), source, build_options(approach, target, {}, {}))


def calib_loader(source: str, approach: str = "ptq-static", target: str = "runtime") -> str:
    text, report = rewrite(source, approach, target)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite(text, approach, target)
    assert second.status is Status.UNCHANGED and again == text
    start = text.index("calib_dataloader=") + len("calib_dataloader=")
    end = text.index("\n)  # neural-coder", start)
    fed = " ".join(text[start:end].split()).split(", eval_func=")[0].rstrip(",")
    return fed.replace("( (", "((").replace(") )", "))")


@pytest.mark.parametrize(
    ("target", "call", "iterable", "before", "fed"),
    [
        ("a, b", "model(a, b)", "loader", "", "(((a, b),) for a, b in loader)"),
        ("i, (a, b)", "model(a, b)", "enumerate(loader)", "", "(((a, b),) for a, b in loader)"),
        ("a, b", "model(a, b)", "tqdm(loader)", "", "(((a, b),) for a, b in loader)"),
        ("batch", "model(batch)", "loader", "", "(((batch,),) for batch in loader)"),
        # sentence-transformers style features: a dict per side, given as keywords
        ("batch", 'model(**batch["anchor"])', "loader", "", '(batch["anchor"] for batch in loader)'),
        ("a, b", "model(**a)", "loader", "", "(a for a, b in loader)"),
        ("batch", 'model(batch["anchor"]["ids"])', "loader", "",
         '(((batch["anchor"]["ids"],),) for batch in loader)'),
        ("batch", 'model(batch["ids"])', "loader", "", '(((batch["ids"],),) for batch in loader)'),
        # moved to the device in the loop: the same items (the fit moves them too)
        ("x, y", "model(x, y)", "loader", "x, y = x.to(device), y.to(device)",
         "(((x, y),) for x, y in loader)"),
        ("x, y", "model(x.to(device), y.cuda(non_blocking=True))", "loader", "",
         "(((x, y),) for x, y in loader)"),
        # by keyword: a dict batch, the positional input named by Net.forward
        ("x, y", "model(x, targets=y)", "loader", "", '({"idx": x, "targets": y} for x, y in loader)'),
        ("x, y", "model(idx=x, targets=y)", "loader", "",
         '({"idx": x, "targets": y} for x, y in loader)'),
        ("batch", 'model(idx=batch["ids"])', "loader", "",
         '({"idx": batch["ids"]} for batch in loader)'),
        # unpacked in the loop's body: the item the name takes, not the whole batch
        ("batch", "model(y)", "loader", "x, y = batch", "(((batch[1],),) for batch in loader)"),
        ("batch", "model(x, y)", "loader", "x, y = batch",
         "(((batch[0], batch[1]),) for batch in loader)"),
    ],
)  # fmt: skip
def test_each_batch_is_fed_as_the_loop_calls_the_model(target, call, iterable, before, fed):
    source = script(target, call, iterable, before)
    assert calib_loader(source) == fed
    assert calib_loader(source, "bf16") == fed


@pytest.mark.parametrize(
    ("target", "call", "before"),
    [
        ("x, y", "model(x)", ""),  # the first item: the runtime's rule
        ("x, _", "model(x)", ""),
        ("x, y", "model(x.to(device))", ""),
        ("batch", "model(batch[0])", ""),
        ("batch", "model(**batch)", ""),  # a dict as keyword inputs: the runtime's rule
        ("x, y", "model(x, return_all=True)", ""),  # a literal keeps its default
        ("x, y", "model(x.flip(1))", ""),  # computed in the loop: not in the batch
        ("x, y", "model(x, y)", "x = x.flip(1)"),  # re-bound in the loop
        ("x, y", "model(x, mask)", "mask = x > 0"),
        # `x, y = batch` in the body: x is the batch's first item, the runtime's rule
        ("batch", "model(x)", "x, y = batch"),
        ("batch", "model(x.to(device))", "x, y = batch"),
    ],
)
def test_a_loop_the_runtime_rule_matches_or_that_computes_its_inputs_keeps_the_loader(
    target, call, before
):
    assert calib_loader(script(target, call, before=before)) == "loader"


def test_a_positional_input_beside_keywords_of_a_model_from_elsewhere_keeps_the_loader():
    """`model(x, labels=y)` on a model whose forward is not in the project: the runtime
    cannot pass both kinds, and the positional one cannot be named."""
    source = script("x, y", "model(x, labels=y)").replace("model = Net()", "model = build()")
    source = source.replace("device = ", "from zoo import build\n\ndevice = ")
    assert calib_loader(source) == "loader"


def test_a_model_called_in_another_function_keeps_the_loader():
    source = script("a, b", "embed(model, a, b)").replace(
        'device = "cpu"', 'def embed(net, a, b):\n    return net(a, b)\n\n\ndevice = "cpu"'
    )
    assert calib_loader(source) == "loader"


def test_benchmark_and_inc_read_the_loader_itself():
    source = script("a, b", "model(a, b)")
    assert calib_loader(source, target="inc") == "loader"
    text, report = rewrite(source, "benchmark")
    assert report.status is Status.TRANSFORMED, report.message
    assert "for a, b in loader)" not in text


def test_the_note_says_why_the_batches_are_reshaped():
    _, report = rewrite(script("a, b", "model(a, b)"))
    note = next(p for p in report.placed if "each fed as" in p)
    assert "the batches of loader, each fed as ((a, b),)" in note
    assert "as the training loop calls it at line 23" in note


EVAL_ONLY = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Siamese(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, a, b):
        return (self.fc(a) - self.fc(b)).norm(dim=1)


def evaluate(net, loader):
    net.eval()
    total = 0.0
    with torch.no_grad():
        for a, b in loader:
            total += {call}.sum().item()
    return total


model = Siamese()
model.load_state_dict(torch.load("siamese.pt", weights_only=True))
val_loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 4)), batch_size=4)
print(evaluate(model, val_loader))
"""


def test_without_a_training_loop_the_evaluation_shapes_the_batches():
    """An evaluation-only script: the evaluation's own call (`net(a, b)`) is the one the
    calibration batches reproduce; `net(a)` is the runtime's rule already."""
    source = EVAL_ONLY.format(call="net(a, b)")
    assert calib_loader(source) == "(((a, b),) for a, b in val_loader)"
    _, report = rewrite(source)
    assert any("as evaluate() calls it at line 20" in p for p in report.placed)
    assert calib_loader(EVAL_ONLY.format(call="net(a)")) == "val_loader"


@pytest.mark.parametrize(
    "name",
    ["dual_encoder_pairs_train.py", "dict_pairs_embedding_train.py", "keyword_targets_train.py"],
)
def test_revert_gives_the_samples_back_exactly(name):
    source = script_path(name).read_text()
    for approach in ("ptq-static", "bf16"):
        text, report = rewrite(source, approach)
        assert report.status is Status.TRANSFORMED, report.message
        original, reverted = revert_source(Path(name), text)
        assert original == source, reverted.message


def test_an_input_computed_from_the_batch_and_names_set_before_the_loop_is_computed_at_the_fit():
    # accelerate's cv_example: `inputs = (batch["image"] - mean) / std; model(inputs)` on
    # dict batches, where the runtime's rule would give the model keyword `image=`
    source = script("batch", "model(inputs)", before='inputs = (batch["ids"] - offset) // 2')
    source = source.replace("for epoch in", "offset = 1\nfor epoch in")
    fed = '((((batch["ids"] - offset) // 2,),) for batch in loader)'
    assert calib_loader(source) == fed
    assert calib_loader(source, "bf16") == fed


@pytest.mark.parametrize(
    "before",
    [
        'scale = 2\ninputs = batch["ids"] * scale',  # a name the loop sets: not at the fit
        'inputs = batch["ids"] * unknown',  # never set in the fit's scope
        'inputs = batch["ids"].flip(1)',  # not arithmetic
    ],
)
def test_a_computed_input_the_fit_cannot_see_keeps_the_loader(before):
    assert calib_loader(script("batch", "model(inputs)", before=before)) == "loader"
