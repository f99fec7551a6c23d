"""`shrink: true` on a recipe's structure pruner (`recipes/shrinking.py`): the biases
and batch norms after pruned filters are masked while training, the pruned channels
leave the model at the end, and the smaller model computes what the masked one did."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neural_coder.runtime.pruning.shrink import count_parameters
from neural_coder.runtime.recipes import RecipeConfig, RecipeError, parse_recipe
from neural_coder.runtime.summary import format_table
from neural_coder.runtime.training import prepare_compression

pytest.importorskip("torch_pruning")


class BNCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def _recipe(**pruner: object) -> dict:
    return {
        "version": 1,
        "pruners": {
            "filters": {
                "class": "L1RankedStructureParameterPruner",
                "group_type": "Filters",
                "desired_sparsity": 0.5,
                "weights": ["conv1.weight", "conv2.weight"],
                **pruner,
            }
        },
        "policies": [
            {"pruner": {"instance_name": "filters"}, "starting_epoch": 0, "ending_epoch": 1}
        ],
    }


def _train_masked(model: nn.Module, recipe: object) -> tuple[object, nn.Module, torch.Tensor]:
    """Two epochs of three steps; returns the manager (training not ended yet), a copy
    of the masked model and an input batch."""
    g = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g))
        for _ in range(3)
    ]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cm = prepare_compression(model, RecipeConfig(recipe, epochs=2))
    cm.callbacks.on_train_begin()
    for epoch in range(2):
        cm.callbacks.on_epoch_begin(epoch)
        for step, (x, y) in enumerate(data):
            cm.callbacks.on_step_begin(step)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            opt.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
        cm.callbacks.on_epoch_end()
    return cm, copy.deepcopy(model).eval(), data[0][0]


def test_filter_pruner_with_shrink_gives_a_smaller_model_equal_to_the_masked_one(
    tmp_path,
) -> None:
    torch.manual_seed(0)
    path = tmp_path / "shrink.yaml"
    import yaml

    path.write_text(yaml.safe_dump(_recipe(shrink=True)), encoding="utf-8")
    model = BNCNN()
    before = count_parameters(model)
    cm, masked, x = _train_masked(model, str(path))
    # the pruned filters' biases and batch norms were masked with them
    pruned = masked.conv1.weight.reshape(8, -1).abs().sum(dim=1) == 0
    assert int(pruned.sum()) == 4
    assert bool((masked.conv1.bias[pruned] == 0).all())
    assert bool((masked.bn1.weight[pruned] == 0).all() and (masked.bn1.bias[pruned] == 0).all())
    cm.callbacks.on_train_end()
    model.eval()
    assert model.conv1.out_channels == 4 and model.bn1.num_features == 4
    assert model.conv2.in_channels == 4 and model.conv2.out_channels == 8
    assert model.fc.in_features == 8
    after = count_parameters(model)
    assert after < 0.4 * before
    torch.testing.assert_close(model(x), masked(x), atol=1e-5, rtol=1e-5)
    summary = cm.summary
    assert summary["shrink_params_before"] == before and summary["shrink_params_after"] == after
    assert summary["shrink_channels_removed"] == 12
    assert "parameters (shrunk)" in format_table(summary)
    # the masks stop with the old weights: a step after the end touches nothing
    assert not cm.callbacks.compressors[0].store._apply_params


def test_without_shrink_the_recipe_only_masks() -> None:
    torch.manual_seed(0)
    model = BNCNN()
    before = count_parameters(model)
    cm, masked, _ = _train_masked(model, _recipe())
    cm.callbacks.on_train_end()
    assert count_parameters(model) == before and model.conv1.out_channels == 8
    pruned = masked.conv1.weight.reshape(8, -1).abs().sum(dim=1) == 0
    # followers untouched (a zero row's conv bias and BN scale get no gradient)
    assert bool((masked.conv1.bias[pruned] != 0).all() and (masked.bn1.weight[pruned] == 1).all())
    assert not any(k.startswith("shrink_") for k in cm.summary)


def test_shrink_key_is_validated() -> None:
    assert parse_recipe(_recipe(shrink=True)).shrink
    assert not parse_recipe(_recipe(shrink=False)).shrink
    with pytest.raises(RecipeError, match="shrink must be true or false, got 'yes'"):
        parse_recipe(_recipe(shrink="yes"))
    agp = _recipe()
    agp["pruners"]["filters"] = {
        "class": "AutomatedGradualPruner",
        "initial_sparsity": 0.1,
        "final_sparsity": 0.5,
        "weights": ["conv1.weight"],
        "shrink": True,
    }
    with pytest.raises(RecipeError, match="unknown key 'shrink' for AutomatedGradualPruner"):
        parse_recipe(agp)
    with pytest.raises(RecipeError, match="unknown key 'shrnk'"):
        parse_recipe(_recipe(shrnk=True))
    qat = _recipe(shrink=True)
    qat["quantizers"] = {"q": {"class": "QuantAwareTrainRangeLinearQuantization"}}
    qat["policies"].append({"quantizer": {"instance_name": "q"}, "starting_epoch": 1})
    with pytest.raises(RecipeError, match="float models only"):
        parse_recipe(qat)


def test_the_shrink_sample_recipe_reads() -> None:
    from pathlib import Path

    from neural_coder.runtime.recipes import read_recipe

    sample = Path(__file__).resolve().parents[2] / "samples" / "recipes" / "filters_shrink.yaml"
    assert read_recipe(sample).shrink
