"""QuantSpec: reading INC 2.x configs, op selection rules, the recipe; shared weights."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from neural_coder.runtime.quant import (
    DYNAMIC,
    QAT,
    STATIC,
    QuantSpec,
    get_backend,
    get_recipe,
    normalize_approach,
)
from neural_coder.runtime.quant.backend import DEFAULT_WEIGHT, OpRule, TensorScheme
from neural_coder.runtime.quant.modules import ObservedLinear


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("static", STATIC),
        ("post_training_static_quant", STATIC),
        ("auto", STATIC),
        ("post_training_auto_quant", STATIC),
        ("dynamic", DYNAMIC),
        ("post_training_dynamic_quant", DYNAMIC),
        ("quant_aware_training", QAT),
    ],
)
def test_approach_spellings(given, expected):
    assert normalize_approach(given) == expected


def test_unknown_approach_lists_the_allowed_values():
    with pytest.raises(ValueError, match="'static', 'dynamic'"):
        normalize_approach("weight_only")


def test_rules_from_an_inc_config():
    conf = SimpleNamespace(
        approach="post_training_static_quant",
        op_type_dict={"Conv.*": {"weight": {"granularity": ["per_tensor"], "scheme": ["asym"]}}},
        op_name_dict={
            "fc": {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}},
            "head": {"activation": {"dtype": ["fp32"]}},  # activation only: float too
            "body": {"weight": {"dtype": ["int8", "fp32"]}},  # int8 still allowed
            "emb": {"weight": {"dtype": ["bf16"]}},  # no int8 option: float
        },
        reduce_range=None,
        example_inputs=torch.zeros(1, 3),
    )
    spec = QuantSpec.from_config(conf)
    assert spec.approach == STATIC
    assert spec.excluded_names == ("fc", "head", "emb")
    assert spec.excluded_types == ()
    assert spec.example_inputs is not None and spec.example_inputs[0].shape == (1, 3)
    conv = nn.Conv2d(1, 1, 1)
    plan = spec.plan_for("features.0", conv)
    assert plan is not None
    assert plan.weight == TensorScheme(scheme="asym", granularity="per_tensor", algorithm="minmax")
    assert spec.plan_for("fc", nn.Linear(1, 1)) is None
    assert spec.plan_for("body", nn.Linear(1, 1)).weight == DEFAULT_WEIGHT


def test_rules_from_the_runtime_config_classes():
    from neural_coder.runtime.config import (
        PostTrainingQuantConfig,
        QuantizationAwareTrainingConfig,
    )

    fp32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}
    spec = QuantSpec.from_config(QuantizationAwareTrainingConfig(op_name_dict={"fc": fp32}))
    assert spec.approach == QAT and spec.excluded_names == ("fc",)
    ptq = PostTrainingQuantConfig(
        approach="dynamic", op_type_dict={"Linear": {"weight": {"granularity": ["per_tensor"]}}}
    )
    spec = QuantSpec.from_config(ptq)
    assert spec.approach == DYNAMIC
    assert spec.plan_for("fc", nn.Linear(1, 1)).weight.granularity == "per_tensor"
    assert QuantSpec.from_config(PostTrainingQuantConfig(approach="auto")).approach == STATIC


def test_v20_list_names_are_read():
    conf = SimpleNamespace(op_name_list={"fc": {"weight": {"dtype": ["fp32"]}}})
    assert QuantSpec.from_config(conf, approach=QAT).excluded_names == ("fc",)


def test_name_rules_fullmatch_and_override_type_rules():
    spec = QuantSpec(
        rules=(
            OpRule.from_inc("Linear", "type", {"weight": {"dtype": ["fp32"]}}),
            OpRule.from_inc("encoder\\.fc\\d", "name", {"weight": {"dtype": ["int8"]}}),
        )
    )
    linear = nn.Linear(1, 1)
    assert spec.plan_for("encoder.fc1", linear) is not None
    assert spec.plan_for("encoder.fc1.extra", linear) is None  # fullmatch, not search
    assert spec.plan_for("decoder.fc1", linear) is None
    assert spec.plan_for("conv", nn.Conv2d(1, 1, 1)) is not None


def test_invalid_values_are_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match="per_channel, per_tensor"):
        OpRule.from_inc("fc", "name", {"weight": {"granularity": ["per_row"]}})
    with pytest.raises(ValueError, match="path must be"):
        QuantSpec(path="graph")


def test_spec_survives_the_recipe_round_trip():
    spec = QuantSpec(
        approach=QAT,
        rules=(OpRule.from_inc("fc", "name", {"weight": {"dtype": ["fp32"]}}),),
        reduce_range=True,
        path="eager",
    )
    assert QuantSpec.from_dict(spec.to_dict()) == spec


class Tied(nn.Module):
    """A language-model head tied to the embedding, and one Linear at two names."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.body = nn.Linear(8, 8)
        self.alias = self.body
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.alias(self.body(self.emb(ids)))))


def test_eager_path_keeps_shared_modules_and_tied_weights_float():
    model = Tied()
    backend = get_backend()
    prepared = backend.prepare_qat(model, QuantSpec(path="eager"))
    assert type(model.head) is nn.Linear and model.head.weight is model.emb.weight
    assert type(model.body) is nn.Linear and model.alias is model.body
    model(torch.randint(0, 10, (2, 5)))
    assert backend.count_quantized_modules(backend.convert(prepared)) == 0


def test_eager_path_counts_only_int8_modules():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 2))
    backend = get_backend()
    prepared = backend.prepare_qat(model, QuantSpec(path="eager"))
    assert isinstance(model[0], ObservedLinear)
    assert backend.count_quantized_modules(model) == 0  # fake-quant is not int8 yet
    model(torch.randn(3, 4))
    int8 = backend.convert(prepared)
    assert backend.count_quantized_modules(int8) == 2
    assert get_recipe(int8)["quantized_ops"] == ["0", "3"]


def test_rebuild_rejects_a_foreign_recipe():
    with pytest.raises(ValueError, match="not a neural_coder quantization recipe"):
        get_backend().rebuild(nn.Linear(1, 1), {"approach": "post_training_static_quant"})
