"""Recipe parsing and validation: sections, classes, keys, policies, names against a model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neural_coder.runtime.recipes import RecipeConfig, RecipeError, parse_recipe, read_recipe
from neural_coder.runtime.training import prepare_compression

BASE = {
    "version": 1,
    "pruners": {
        "p": {
            "class": "AutomatedGradualPruner",
            "initial_sparsity": 0.05,
            "final_sparsity": 0.5,
            "weights": ["fc1.weight"],
        }
    },
    "lr_schedulers": {"lr": {"class": "ExponentialLR", "gamma": 0.9}},
    "policies": [
        {"pruner": {"instance_name": "p"}, "starting_epoch": 0, "ending_epoch": 4, "frequency": 2},
        {"lr_scheduler": {"instance_name": "lr"}, "starting_epoch": 1, "ending_epoch": 10},
    ],
}


def _with(**changes: object) -> dict:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_parses_named_instances_and_policies() -> None:
    recipe = parse_recipe(BASE)
    assert recipe.instances["pruners"]["p"].cls == "AutomatedGradualPruner"
    pruning, lr = recipe.policies
    assert (pruning.kind, pruning.starting_epoch, pruning.ending_epoch, pruning.frequency) == (
        "pruner",
        0,
        4,
        2,
    )
    assert [e for e in range(6) if pruning.fires(e)] == [0, 2]
    assert pruning.last_epoch() == 2
    assert lr.fires(1) and not lr.fires(0) and lr.fires(9) and not lr.fires(10)


def test_epochs_nested_in_the_instance_reference_as_in_the_seed_qat_example() -> None:
    recipe = parse_recipe(
        {
            "version": 1,
            "quantizers": {"q": {"class": "QuantAwareTrainRangeLinearQuantization"}},
            "policies": [
                {"quantizer": {"instance_name": "q", "starting_epoch": 2, "ending_epoch": 200}}
            ],
        }
    )
    assert (recipe.policies[0].starting_epoch, recipe.policies[0].ending_epoch) == (2, 200)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(extensions={}), "unknown section 'extensions'; allowed: version, pruners"),
        (
            _with(pruners={"p": {"class": "MagicPruner"}}),
            "unknown class 'MagicPruner'; supported pruners: AutomatedGradualPruner",
        ),
        (
            _with(
                pruners={
                    "p": {
                        "class": "AutomatedGradualPruner",
                        "initial_sparsity": 0.0,
                        "final_sparsity": 0.5,
                        "weights": ["a"],
                        "speed": 3,
                    }
                }
            ),
            "unknown key 'speed' for AutomatedGradualPruner; allowed: initial_sparsity",
        ),
        (
            _with(pruners={"p": {"class": "AutomatedGradualPruner", "final_sparsity": 0.5}}),
            "needs initial_sparsity, weights",
        ),
        (
            _with(quantizers={"q": {"class": "DorefaQuantizer", "bits_weights": 4}}),
            "DoReFa's low-bit weight/activation quantization is not supported); supported "
            "quantizers: QuantAwareTrainRangeLinearQuantization",
        ),
        (
            _with(
                quantizers={
                    "q": {"class": "QuantAwareTrainRangeLinearQuantization", "bits_weights": 4}
                }
            ),
            "int8 only",
        ),
        (
            _with(lr_schedulers={"lr": {"class": "ExponentialRL", "gamma": 0.9}}),
            "unknown class 'ExponentialRL'; any torch.optim.lr_scheduler class: ",
        ),
        (
            _with(lr_schedulers={"lr": {"class": "StepLR", "gama": 0.9}}),
            "StepLR takes no 'gama'; it takes step_size, gamma, last_epoch",
        ),
        (
            _with(
                regularizers={
                    "r": {"class": "GroupLassoRegularizer", "reg_regims": {"w": [0.1, "5D"]}}
                }
            ),
            "group '5D' is not one of 2D, 3D, 4D, Channels, Cols, Rows",
        ),
        (
            _with(
                regularizers={
                    "r": {
                        "class": "L1Regularizer",
                        "reg_regims": {"w": 0.1},
                        "threshold_criteria": "Median",
                    }
                }
            ),
            "threshold_criteria 'Median' is not one of Mean_Abs, Max",
        ),
        (_with(policies=[{"pruner": {"instance_name": "nope"}}]), "no pruner named 'nope'"),
        (
            _with(policies=[{"pruner": {"instance_name": "p"}, "every": 2}]),
            "unknown key 'every'",
        ),
        (
            _with(
                policies=[
                    {"pruner": {"instance_name": "p"}, "starting_epoch": 3, "ending_epoch": 3}
                ]
            ),
            "ending_epoch 3 must be after starting_epoch 3",
        ),
        (_with(version=2), "version 2 is not supported"),
    ],
)
def test_errors_list_what_is_allowed(data: dict, expected: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(data)
    assert expected in str(info.value)


def test_yaml_is_read_with_safe_load_only(tmp_path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("version: 1\npolicies: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="not valid yaml"):
        read_recipe(path)
    with pytest.raises(RecipeError, match="recipe file not found"):
        read_recipe(tmp_path / "missing.yaml")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def test_names_are_checked_at_train_begin_with_close_matches() -> None:
    data = _with()
    data["pruners"]["p"]["weights"] = ["fc_1.weight"]
    cm = prepare_compression(Net(), RecipeConfig(data))  # parsing alone does not know the model
    with pytest.raises(
        RecipeError,
        match=r"'fc_1.weight' matches no weight with 2\+ dimensions .*did you mean 'fc1.weight'",
    ):
        cm.callbacks.on_train_begin()


def test_module_overrides_are_checked_and_first_match_wins() -> None:
    from neural_coder.runtime.recipes.names import first_match

    chosen = first_match(
        {r"block1\.conv1": 4, r"block1\.conv.*": 2, "*": 8},
        ["block1.conv1", "block1.conv2", "fc"],
        "module",
        "overrides",
    )
    assert chosen == {"block1.conv1": 4, "block1.conv2": 2, "fc": 8}
    data = {
        "version": 1,
        "quantizers": {
            "q": {
                "class": "QuantAwareTrainRangeLinearQuantization",
                "overrides": {"fc3": {"bits_weights": None, "bits_activations": None}},
            }
        },
        "policies": [{"quantizer": {"instance_name": "q"}}],
    }
    cm = prepare_compression(Net(), data)
    with pytest.raises(RecipeError, match="'fc3' matches no module .*did you mean"):
        cm.callbacks.on_train_begin()


def test_distiller_without_teacher_is_refused() -> None:
    data = {
        "version": 1,
        "distillers": {"kd": {"class": "KnowledgeDistillationPolicy", "temperature": 2.0}},
        "policies": [{"distiller": {"instance_name": "kd"}, "ending_epoch": 2}],
    }
    with pytest.raises(RecipeError, match="needs a teacher model"):
        prepare_compression(Net(), data)


def test_recipe_argument_and_refusal_of_unknown_configs(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("version: 1\nlr_schedulers:\n  lr: {class: StepLR, step_size: 1}\n"
                    "policies:\n  - lr_scheduler: {instance_name: lr}\n")  # fmt: skip
    cm = prepare_compression(Net(), None, recipe=str(path))
    assert [c.kind for c in cm.compressors] == ["recipe"]
    assert cm.conf.recipe is not None
