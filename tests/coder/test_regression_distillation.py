"""Distillation of a model trained on a regression criterion compares student and teacher
outputs by MSE: a KL over softmax sees a one-wide output as a one-class distribution
(always 0: the teacher teaches nothing). The user's --loss-types still win."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

LOOP = """import torch
import torch.nn.functional as F
model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
teacher = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
teacher.load_state_dict(torch.load("teacher.pt", weights_only=True))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
loader = [(torch.rand(8, 20), torch.rand(8, 1))] * 4
{criterion}
for epoch in range(2):
    for source, targets in loader:
        optimizer.zero_grad()
        output = model(source)
        loss = {loss}
        loss.backward()
        optimizer.step()
"""

FUNCTIONAL = LOOP.format(criterion="", loss="F.mse_loss(output, targets)")
MODULE = LOOP.format(
    criterion="criterion = torch.nn.SmoothL1Loss()", loss="criterion(output, targets)"
)
CLASSIFIER = LOOP.format(criterion="", loss="F.cross_entropy(output, targets.long().squeeze(1))")


def _rewrite(text: str, distillation: dict) -> tuple[str, list[str]]:
    options = build_options(
        "distillation", None, {}, {"distillation": {"teacher": "teacher", **distillation}}
    )
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.placed


@pytest.mark.parametrize("text", [FUNCTIONAL, MODULE], ids=["functional", "module"])
def test_a_regression_criterion_is_distilled_by_mse(text):
    out, placed = _rewrite(text, {})
    assert 'loss_types=["MSE", "MSE"]' in out
    assert any("regression criterion" in p for p in placed), placed


def test_a_classifier_keeps_the_kl_default():
    out, _ = _rewrite(CLASSIFIER, {})
    assert 'loss_types=["CE", "KL"]' in out


def test_the_users_loss_types_are_kept():
    out, _ = _rewrite(FUNCTIONAL, {"loss_types": ("CE", "CE")})
    assert 'loss_types=["CE", "CE"]' in out
