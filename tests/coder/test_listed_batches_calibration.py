"""Static quantization (and bf16) of a script whose training loop iterates a list of
batches it built itself (`for anchor, positive, negative in train_batches:`), with no
DataLoader anywhere: the loop's own iterable feeds the fit, each batch handed to the model
as the loop hands it. It was refused: 'no DataLoader is in reach'."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, a, p, n):
        return self.fc(a), self.fc(p), self.fc(n)


def make_batches(k):
    return [(torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6)) for _ in range(k)]


{batches}
net = Net()
criterion = torch.nn.TripletMarginLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(2):
    for {target} in {iterable}:
        optimizer.zero_grad()
        out_a, out_p, out_n = net(anchor, positive, negative)
        loss = criterion(out_a, out_p, out_n)
        loss.backward()
        optimizer.step()
torch.save(net.state_dict(), "net.pt")
"""
LISTED = SCRIPT.format(
    batches="train_batches = make_batches(3)",
    target="anchor, positive, negative",
    iterable="train_batches",
)


def rewrite(text: str, approach: str) -> tuple[str, list[str]]:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.placed


@pytest.mark.parametrize("approach", ["ptq-static", "bf16"])
def test_the_list_the_training_loop_iterates_feeds_the_fit(approach):
    out, placed = rewrite(LISTED, approach)
    assert "for anchor, positive, negative in train_batches" in out.split(".fit(")[1]
    assert any("train_batches, the batches the training loop at line 22" in p for p in placed)
    assert out.index(".fit(") < out.index('torch.save(net.state_dict(), "net.pt")')


@pytest.mark.parametrize(
    ("batches", "target", "iterable"),
    [
        ("steps = range(3)", "anchor, positive, negative", "steps"),  # not batches
        ("train_batches = make_batches(3)", "batch", "train_batches"),  # not unpacked
    ],
)
def test_other_iterables_stay_refused(batches, target, iterable):
    text = SCRIPT.format(batches=batches, target=target, iterable=iterable)
    if target == "batch":
        text = text.replace("net(anchor, positive, negative)", "net(*batch)")
    with pytest.raises(AnalysisError, match="no DataLoader is in reach"):
        rewrite_source(Path("s.py"), text, build_options("ptq-static", None, {}, {}))
