"""A snapshot loaded by a helper only when it exists (`if os.path.exists(path):
self._load_snapshot(path)`, the DDP tutorial's resume) is no trained teacher: the default
copy of the model would be untrained on a fresh run, so distillation asks for a teacher.
A helper that always loads still gives the default teacher."""

from __future__ import annotations

from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

TRAINER = """import os
import torch
import torch.nn.functional as F
class Trainer:
    def __init__(self, model, loader, optimizer, snapshot_path):
        self.model = model
        self.loader = loader
        self.optimizer = optimizer
        if os.path.exists(snapshot_path):
            self._load_snapshot(snapshot_path)
    def _load_snapshot(self, path):
        self.model.load_state_dict(torch.load(path, weights_only=True)["MODEL_STATE"])
    def train(self, max_epochs):
        for epoch in range(max_epochs):
            for x, y in self.loader:
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x), y)
                loss.backward()
                self.optimizer.step()
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
Trainer(model, loader, optimizer, "snapshot.pt").train(2)
"""


def test_a_resume_snapshot_loaded_by_a_helper_is_no_teacher(tmp_path):
    path = write(tmp_path, TRAINER)
    result = run_cli("optimize", path, "--approach", "distillation")
    assert result.exit_code == 1, result.output
    assert "trained weights are loaded only when os.path.exists(snapshot_path)" in result.output
    assert "--teacher" in result.output
    assert_untouched(path, TRAINER)


def test_a_helper_that_always_loads_gives_the_default_teacher(tmp_path):
    source = TRAINER.replace(
        "        if os.path.exists(snapshot_path):\n            self._load_snapshot(snapshot_path)\n",
        "        self._load_snapshot(snapshot_path)\n",
    )
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "distillation", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "teacher: a frozen copy of self.model (trained weights loaded by" in result.output
