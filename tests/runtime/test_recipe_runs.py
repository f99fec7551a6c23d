"""Recipes run end to end on a tiny CNN: the seed's example schedules in substance
(AGP with an LR scheduler; pruning + group lasso + LR; QAT), structure pruners, and a
multi-shot recipe (distillation, then pruning with masks kept, then QAT)."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn

from neural_coder.runtime.recipes import RecipeConfig
from neural_coder.runtime.training import prepare_compression


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _data(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        (torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g))
        for _ in range(n)
    ]


def _train(model: nn.Module, conf: object, epochs: int, lr: float = 0.05, epoch_hooks: bool = True):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    model = cm.model
    for epoch in range(epochs):
        if epoch_hooks:
            cm.callbacks.on_epoch_begin(epoch)
        for step, (x, y) in enumerate(_data()):
            cm.callbacks.on_step_begin(step)
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
            loss = cm.callbacks.on_after_compute_loss(x, out, loss)
            opt.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            opt.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
        if epoch_hooks:
            cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()
    return cm, opt


def _zeros(t: torch.Tensor) -> float:
    return float((t == 0).float().mean())


def test_agp_with_an_lr_scheduler() -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "pruners": {
            "agp": {
                "class": "AutomatedGradualPruner",
                "initial_sparsity": 0.05,
                "final_sparsity": 0.7,
                "weights": ["conv1.weight", "conv2.weight"],
            }
        },
        "lr_schedulers": {"pruning_lr": {"class": "ExponentialLR", "gamma": 0.5}},
        "policies": [
            {"pruner": {"instance_name": "agp"}, "starting_epoch": 0, "ending_epoch": 5, "frequency": 2},
            {"lr_scheduler": {"instance_name": "pruning_lr"}, "starting_epoch": 2, "ending_epoch": 200, "frequency": 1},
        ],
    }  # fmt: skip
    model = TinyCNN()
    cm, opt = _train(model, RecipeConfig(recipe), epochs=5)
    fired = cm.compressors[0].fired
    assert fired[0] == [0, 2, 4] and fired[1] == [2, 3, 4]
    assert 0.69 <= _zeros(model.conv2.weight) <= 0.71
    assert 0.69 <= _zeros(model.conv1.weight) <= 0.71
    assert _zeros(model.fc.weight) == 0.0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)
    stages = cm.summary["recipe_stages"]
    assert "fired at epochs 0-4 (3x); sparsity 0.69" in stages[0]
    assert "stepped 3 time(s), lr 0.05 -> 0.00625" in stages[1]


def test_agp_is_gradual_over_the_policy_epochs() -> None:
    from neural_coder.runtime.recipes.pruners import agp_sparsity

    values = [agp_sparsity(0.0, 0.8, e, 0, 4) for e in range(5)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.8)
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(s > 0 for s in steps) and steps == sorted(steps, reverse=True)  # fast, then slow


def test_mixed_sensitivity_pruning_group_lasso_and_lr() -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "pruners": {"my_pruner": {"class": "SensitivityPruner", "sensitivities": {"conv1.weight": 0.25, "conv2.weight": 0.5, "fc.weight": 0.4}}},
        "regularizers": {"2d_groups_regularizer": {"class": "GroupLassoRegularizer", "reg_regims": {r"conv\d\.weight": [0.002, "2D"]}}},
        "lr_schedulers": {"pruning_lr": {"class": "ExponentialLR", "gamma": 0.9}},
        "policies": [
            {"pruner": {"instance_name": "my_pruner"}, "starting_epoch": 0, "ending_epoch": 4, "frequency": 2},
            {"regularizer": {"instance_name": "2d_groups_regularizer"}, "starting_epoch": 0, "ending_epoch": 4, "frequency": 1},
            {"lr_scheduler": {"instance_name": "pruning_lr"}, "starting_epoch": 1, "ending_epoch": 200, "frequency": 1},
        ],
    }  # fmt: skip
    model = TinyCNN()
    reference = copy.deepcopy(model)
    cm, opt = _train(model, recipe, epochs=4)
    _train(reference, {"version": 1, "policies": []}, epochs=4)
    for name in ("conv1", "conv2", "fc"):
        assert _zeros(getattr(model, name).weight) > 0.1  # |w| < s * std(w) pruned
    reg = next(iter(cm.compressors[0].regularizers.values()))
    assert reg.steps == 12
    kernel_norms = model.conv2.weight.detach().flatten(2).norm(dim=2)
    ref_norms = reference.conv2.weight.detach().flatten(2).norm(dim=2)
    assert kernel_norms.sum() < ref_norms.sum()  # group lasso shrank the 2D kernels
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.9**3)
    assert len(cm.summary["recipe_stages"]) == 3


def test_group_lasso_threshold_masks_whole_filters_and_keeps_them() -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "regularizers": {"filters": {"class": "GroupLassoRegularizer", "reg_regims": {"conv2.weight": [0.5, "3D"]}, "threshold_criteria": "Mean_Abs", "threshold": 0.05}},
        "policies": [{"regularizer": {"instance_name": "filters"}, "starting_epoch": 0, "ending_epoch": 2}],
    }  # fmt: skip
    model = TinyCNN()
    _train(model, recipe, epochs=4)
    per_filter = model.conv2.weight.detach().flatten(1)
    dead = (per_filter == 0).all(dim=1)
    assert dead.any()  # thresholded at the end of epoch 1, still zero two epochs later
    assert ((per_filter == 0).any(dim=1) == dead).all()  # whole filters, nothing partial


@pytest.mark.parametrize(("group", "dim"), [("Filters", 0), ("Channels", 1)])
def test_structure_pruners_remove_whole_filters_or_channels(group: str, dim: int) -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "pruners": {"s": {"class": "L1RankedStructureParameterPruner_AGP", "initial_sparsity": 0.1, "final_sparsity": 0.5, "group_type": group, "weights": ["conv2.weight"]}},
        "policies": [{"pruner": {"instance_name": "s"}, "starting_epoch": 0, "ending_epoch": 3}],
    }  # fmt: skip
    model = TinyCNN()
    _train(model, recipe, epochs=3)
    w = model.conv2.weight.detach()
    zero_groups = (w.transpose(0, dim).flatten(1) == 0).all(dim=1)
    assert int(zero_groups.sum()) == w.shape[dim] // 2
    assert _zeros(w) == pytest.approx(0.5)


def test_qat_quantizer_with_overrides() -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "quantizers": {"q": {"class": "QuantAwareTrainRangeLinearQuantization", "bits_activations": 8, "bits_weights": 8, "overrides": {"fc": {"bits_weights": None, "bits_activations": None}}}},
        "policies": [{"quantizer": {"instance_name": "q", "starting_epoch": 0, "ending_epoch": 200, "frequency": 1}}],
    }  # fmt: skip
    cm, _ = _train(TinyCNN(), recipe, epochs=2)
    kinds = {name: type(m).__module__ for name, m in cm.model.model.named_modules()}
    assert "quantized" in kinds["conv1"] and "quantized" in kinds["conv2"]
    assert kinds["fc"] == "torch.nn.modules.linear"  # override: kept float
    assert cm.summary["quantized_modules"] == 2


def test_multi_shot_distill_then_prune_then_qat(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    teacher = TinyCNN()
    recipe = {
        "version": 1,
        "distillers": {"kd": {"class": "KnowledgeDistillationPolicy", "temperature": 2.0, "distill_wt": 0.7, "student_wt": 0.3}},
        "pruners": {"agp": {"class": "AutomatedGradualPruner", "initial_sparsity": 0.1, "final_sparsity": 0.5, "weights": ["conv1.weight", "conv2.weight"]}},
        "quantizers": {"q": {"class": "QuantAwareTrainRangeLinearQuantization"}},
        "policies": [
            {"distiller": {"instance_name": "kd"}, "starting_epoch": 0, "ending_epoch": 2},
            {"pruner": {"instance_name": "agp"}, "starting_epoch": 2, "ending_epoch": 4},
            {"quantizer": {"instance_name": "q"}, "starting_epoch": 4},
        ],
    }  # fmt: skip
    model = TinyCNN()
    with caplog.at_level(logging.INFO):
        cm, _ = _train(model, RecipeConfig(recipe, teacher_model=teacher), epochs=6)
    summary = cm.summary
    assert summary["distillation_steps"] == 2 * 3  # epochs 0 and 1 only
    assert summary["quantized_modules"] >= 2
    int8 = dict(cm.model.model.named_modules())
    w2 = int8["conv2"].weight().dequantize()
    assert 0.45 <= _zeros(w2) <= 0.55  # the masks survived QAT and the int8 conversion
    stages = summary["recipe_stages"]
    assert "6 distillation steps" in stages[0]
    assert "fired at epochs 2-3" in stages[1] and "sparsity 0.5" in stages[1]
    assert "fake quantization from epoch 4" in stages[2] and "int8 module(s)" in stages[2]
    assert "recipe_stages" in caplog.text


def test_a_loop_without_epoch_hooks_is_epoch_zero(caplog: pytest.LogCaptureFixture) -> None:
    recipe = {
        "version": 1,
        "pruners": {"lvl": {"class": "SparsityLevelParameterPruner", "levels": {"conv2.weight": 0.6, "*": 0.2}}},
        "policies": [{"pruner": {"instance_name": "lvl"}}],
    }  # fmt: skip
    model = TinyCNN()
    with caplog.at_level(logging.WARNING):
        _train(model, recipe, epochs=2, epoch_hooks=False)
    assert "treated as one epoch, epoch 0" in caplog.text
    assert _zeros(model.conv2.weight) == pytest.approx(0.6, abs=0.01)
    assert _zeros(model.conv1.weight) == pytest.approx(0.2, abs=0.01)
    assert _zeros(model.fc.weight) == pytest.approx(0.2, abs=0.02)


def test_l1_threshold_without_an_end_epoch_applies_when_training_ends() -> None:
    torch.manual_seed(0)
    recipe = {
        "version": 1,
        "regularizers": {"l1": {"class": "L1Regularizer", "reg_regims": {"conv2.weight": 0.02}, "threshold_criteria": "Mean_Abs"}},
        "policies": [{"regularizer": {"instance_name": "l1"}}],
    }  # fmt: skip
    model = TinyCNN()
    cm, _ = _train(model, recipe, epochs=2)
    w = model.conv2.weight.detach()
    assert _zeros(w) > 0 and bool((w.abs()[w != 0] >= 0.02).all())
    assert "thresholded (Mean_Abs) sparsity conv2.weight" in cm.summary["recipe_stages"][0]
