"""Static PTQ of a loop that gives its model an input computed in the loop (a seq2seq's
masks and shifted target): the script's evaluation calibrates (`calib_func`), because no
loader batch, fed as `model(batch[0])`, calls the model that way. A loop that feeds the
batch's own items keeps its loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import script_path

HEAD = """import torch
model = torch.nn.Linear(4, 2)
loader = torch.utils.data.DataLoader([(torch.randn(4), 0)] * 8, batch_size=4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return sum(model(torch.tanh(x)).sum().item() for x, _ in loader)
"""

COMPUTED = (
    HEAD
    + """for epoch in range(2):
    for x, y in loader:
        scaled = torch.tanh(x)
        loss = torch.nn.functional.cross_entropy(model(scaled), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(evaluate(model, loader))
"""
)

FROM_THE_BATCH = COMPUTED.replace("model(scaled)", "model(x.to('cpu'))")


def _rewrite(text: str, approach: str = "ptq-static") -> tuple[str, list[str]]:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.placed


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-auto"])
def test_an_input_computed_in_the_loop_is_calibrated_by_the_evaluation(approach):
    out, placed = _rewrite(COMPUTED, approach)
    assert "calib_func=evaluate_candidate," in out and "eval_func=evaluate_candidate," in out
    assert "calib_dataloader" not in out
    assert any("calls the model at line" in p and "scaled" in p for p in placed), placed


def test_arithmetic_of_the_batch_items_keeps_the_loader():
    out, _ = _rewrite(COMPUTED.replace("torch.tanh(x)", "x * 0.5"))
    assert "calib_dataloader=(((x * 0.5,),) for x, y in loader)" in out
    assert "calib_func" not in out


def test_the_batch_items_themselves_keep_the_loader():
    out, _ = _rewrite(FROM_THE_BATCH)
    assert "calib_dataloader=loader" in out
    assert "calib_func" not in out


def test_the_seq2seq_sample_is_calibrated_by_its_evaluation():
    out, placed = _rewrite(script_path("seq2seq_masks_translate.py").read_text())
    assert "calib_func=evaluate_candidate," in out
    assert "return evaluate(candidate, valid_loader, loss_fn)" in out
    assert "calib_dataloader" not in out
    assert any("tgt_input, computed in the loop" in p for p in placed), placed


# no training: a recurrent model evaluated with the state it carries from batch to batch
RECURRENT = """import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(4, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 1)
    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.fc(out[:, -1]), hidden
    def init_hidden(self, batch_size):
        return next(self.parameters()).new_zeros(1, batch_size, 8)
loader = torch.utils.data.DataLoader([(torch.randn(5, 4), 0.0)] * 8, batch_size=4)
net = Net()
net.eval()
"""
MODULE_LEVEL_LOOP = (
    RECURRENT
    + """h = net.init_hidden(4)
for inputs, labels in loader:
    h = h.data
    output, h = net(inputs, h)
print(output.shape)
"""
)
EVALUATION = (
    RECURRENT
    + """def evaluate(net, loader):
    h = net.init_hidden(4)
    total = 0.0
    with torch.no_grad():
        for inputs, labels in loader:
            output, h = net(inputs, h)
            total += (output.squeeze(1) - labels).abs().sum().item()
    return total / len(loader.dataset)
print("mae", evaluate(net, loader))
"""
)


@pytest.mark.parametrize(("approach", "uses"), [("ptq-static", "calibrates"), ("bf16", "times")])
def test_a_state_carried_between_batches_refuses_what_feeds_the_loaders_batches(approach, uses):
    options = build_options(approach, None, {}, {})
    with pytest.raises(AnalysisError) as refused:
        rewrite_source(Path("s.py"), MODULE_LEVEL_LOOP, options)
    message = str(refused.value)
    assert "calls the model at line 18 with h, which no batch of a loader holds" in message
    assert uses in message and "ptq-dynamic" in message


def test_a_state_carried_between_batches_quantizes_dynamically():
    out, _ = _rewrite(MODULE_LEVEL_LOOP, "ptq-dynamic")
    assert 'PostTrainingQuantConfig(approach="dynamic")' in out


def test_an_evaluation_carrying_a_state_between_batches_calibrates():
    out, placed = _rewrite(EVALUATION)
    assert "calib_func=evaluate_candidate," in out and "calib_dataloader" not in out
    assert any("evaluate() calls the model at line" in p and " h, " in p for p in placed), placed
