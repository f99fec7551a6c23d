"""NNI 3.0's fusion compression with INC's API: different pruners on different module
groups (`pruning_configs`, one dict per group), QAT and distillation, all in one
`prepare_compression` and one training run."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import (
    DistillationConfig,
    KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.pruning.patterns import to_2d
from neural_coder.runtime.training import prepare_compression


class ConvMLP(nn.Module):
    """Two convolutions (one module group) and two hidden linears (another) + a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _zero_rows(weight: torch.Tensor) -> int:
    return int((to_2d(weight) == 0).all(dim=1).sum())


def _zero_blocks_4x1(weight: torch.Tensor) -> int:
    w2 = to_2d(weight)
    return int((w2.reshape(w2.shape[0] // 4, 4, -1) == 0).all(dim=1).sum())


def test_two_pruners_on_two_groups_with_qat_and_distillation_in_one_shot(
    tmp_path, monkeypatch
) -> None:
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    torch.manual_seed(0)
    student = ConvMLP()
    teacher = copy.deepcopy(student).eval()
    pruning = WeightPruningConfig(
        pruning_configs=[
            # filters of the convolutions, by magnitude, per layer
            {"op_names": ["conv"], "pattern": "1xchannel", "pruning_type": "magnitude",
             "pruning_scope": "local", "target_sparsity": 0.5},
            # 4x1 blocks of the hidden linears, by snip_momentum, one global ranking
            {"op_names": ["fc"], "pattern": "4x1", "pruning_type": "snip_momentum",
             "target_sparsity": 0.75},
        ],
        start_step=1,
        end_step=6,
    )  # fmt: skip
    distillation = DistillationConfig(
        teacher, KnowledgeDistillationLossConfig(temperature=2.0, loss_types=["CE", "KL"])
    )
    cm = prepare_compression(
        student, [pruning, QuantizationAwareTrainingConfig(), distillation]
    )
    optimizer = torch.optim.SGD(student.parameters(), lr=0.02)
    cm.callbacks.on_train_begin()
    model = cm.model
    changed = 0
    torch.manual_seed(1)
    for step in range(10):
        x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))
        cm.callbacks.on_step_begin(step)
        out = model(x)
        user_loss = nn.functional.cross_entropy(out, y)
        loss = cm.callbacks.on_after_compute_loss(x, out, user_loss)
        changed += int(not torch.equal(loss, user_loss))
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
    # the structure each pruner made, read before QAT converts to int8
    pruner_a, pruner_b = cm.compressors[0].pruners
    assert sorted(pruner_a.params) == ["conv1", "conv2"]
    assert sorted(pruner_b.params) == ["fc1", "fc2"]  # the head is never pruned
    conv1, conv2 = pruner_a.params["conv1"], pruner_a.params["conv2"]
    assert _zero_rows(conv1) == 4 and _zero_rows(conv2) == 8
    fc_blocks = sum(_zero_blocks_4x1(pruner_b.params[n]) for n in ("fc1", "fc2"))
    fc_total = sum(to_2d(pruner_b.params[n]).numel() // 4 for n in ("fc1", "fc2"))
    assert fc_blocks == pytest.approx(0.75 * fc_total, abs=1)
    assert _zero_rows(pruner_b.params["fc1"]) < 32  # blocks, not rows

    cm.callbacks.on_train_end()
    summary = json.loads(summary_path.read_text())
    assert summary["techniques"] == ["pruning", "qat", "distillation"]
    assert changed == 10 and summary["distillation_steps"] == 10
    assert summary["quantized_modules"] >= 4
    assert summary["pruning_target_reached"] is True
    # the zeros survive into the int8 model: whole int8 filters of conv1 are zero
    int8_conv1 = dict(cm.model.model.named_modules())["conv1"]
    assert _zero_rows(int8_conv1.weight().dequantize()) == 4
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_shrink_with_qat_in_the_same_shot_says_why_it_did_not_shrink() -> None:
    torch.manual_seed(0)
    model = ConvMLP()
    pruning = WeightPruningConfig(
        target_sparsity=0.5, pattern="1xchannel", pruning_type="magnitude", end_step=2, shrink=True
    )
    cm = prepare_compression(model, [pruning, QuantizationAwareTrainingConfig()])
    cm.callbacks.on_train_begin()
    optimizer = torch.optim.SGD(cm.model.parameters(), lr=0.01)
    for step in range(3):
        cm.callbacks.on_step_begin(step)
        cm.model(torch.randn(4, 3, 8, 8)).sum().backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
    cm.callbacks.on_train_end()
    assert "prepared for quantization-aware training" in cm.summary["shrink_note"]
    assert "shrink_params_after" not in cm.summary and cm.summary["quantized_modules"] > 0
