"""`--approach pruning --pattern 1xchannel`: the rewritten script ends with the shrunk
model, the one it evaluates and saves."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytest.importorskip("torch_pruning")

SCRIPT = '''\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = x + torch.relu(self.bn2(self.conv2(x)))  # a residual stream both convs write
        return self.fc(x.mean(dim=(2, 3)))


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


torch.manual_seed(0)
images = torch.randn(128, 3, 8, 8)
labels = images.mean(dim=(1, 2, 3)).gt(0).long()
loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    model.train()
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
accuracy = evaluate(model, loader)
print(f"evaluated with {sum(p.numel() for p in model.parameters())} parameters: {accuracy:.3f}")
torch.save(model, "model.pt")
loaded = torch.load("model.pt", weights_only=False)
print(f"loaded with {sum(p.numel() for p in loaded.parameters())} parameters: {evaluate(loaded, loader):.3f}")
'''


def test_channel_pruning_script_ends_with_the_smaller_model(tmp_path):
    script = tmp_path / "train_cnn.py"
    script.write_text(SCRIPT)
    result = run_cli(
        "optimize", script, "--approach", "pruning", "--pattern", "1xchannel",
        "--pruning-type", "magnitude", "--target-sparsity", "0.5",
    )  # fmt: skip
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert "shrink=True" in script.read_text() and "start_step=1" in script.read_text()
    run, summary = run_script(script)
    before, after = summary["shrink_params_before"], summary["shrink_params_after"]
    assert after < 0.8 * before, summary
    assert summary["shrink_max_abs_diff"] < 1e-4
    evaluated = int(re.search(r"evaluated with (\d+) parameters", run.stdout).group(1))
    assert evaluated == after
    reloaded = re.search(r"loaded with (\d+) parameters: ([0-9.]+)", run.stdout)
    assert int(reloaded.group(1)) == after
    assert reloaded.group(2) == re.search(r"evaluated with \d+ parameters: ([0-9.]+)", run.stdout).group(1)


def test_shrink_is_refused_for_inc_and_can_be_turned_off(tmp_path):
    script = tmp_path / "train_cnn.py"
    script.write_text(SCRIPT)
    refused = run_cli(
        "optimize", script, "--approach", "pruning", "--pattern", "1xchannel", "--target", "inc",
        "--shrink", "--diff",
    )  # fmt: skip
    assert refused.exit_code == 2 and "--no-shrink" in refused.output, refused.output
    inc = run_cli(
        "optimize", script, "--approach", "pruning", "--pattern", "1xchannel", "--target", "inc",
        "--diff",
    )  # fmt: skip
    assert inc.exit_code == 0 and "shrink=True" not in inc.output, inc.output
    off = run_cli(
        "optimize", script, "--approach", "pruning", "--pattern", "1xchannel", "--no-shrink",
        "--diff",
    )  # fmt: skip
    assert off.exit_code == 0 and "shrink=True" not in off.output, off.output


def test_a_trainer_script_shrinks_only_when_asked_and_is_warned(tmp_path):
    script = tmp_path / "hf_trainer.py"
    script.write_text(script_path("hf_trainer.py").read_text())
    default = run_cli("optimize", script, "--approach", "pruning", "--pattern", "1xchannel", "--diff")
    assert default.exit_code == 0 and "shrink=True" not in default.output, default.output
    asked = run_cli(
        "optimize", script, "--approach", "pruning", "--pattern", "1xchannel", "--shrink", "--diff"
    )
    assert asked.exit_code == 0 and "shrink=True" in asked.output
    assert "from_pretrained cannot load the shrunk model" in asked.output
