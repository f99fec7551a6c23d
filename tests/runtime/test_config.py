"""INC 2.x config classes: defaults, accepted values and every rejection (spec section 2)."""

from __future__ import annotations

import warnings

import pytest
import torch

from neural_coder.runtime import config as cfg
from neural_coder.runtime.config import (
    AccuracyCriterion,
    BenchmarkConfig,
    ConfigValueError,
    DistillationConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    KnowledgeDistillationLossConfig,
    MixedPrecisionConfig,
    Options,
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    SelfKnowledgeDistillationLossConfig,
    TuningCriterion,
    WeightPruningConfig,
    process_pruning_config,
)
from neural_coder.runtime.config.quantization import _RECIPE_DEFAULTS


def rejects(factory, param: str, *fragments: str) -> ConfigValueError:
    with pytest.raises(ConfigValueError) as info:
        factory()
    err = info.value
    assert isinstance(err, ValueError)
    assert err.param == param or err.param.startswith(param), (err.param, str(err))
    text = str(err)
    assert param.split("[")[0] in text
    for fragment in fragments:
        assert fragment in text, text
    return err


# -- options ------------------------------------------------------------------------
def test_options_defaults_and_setters(monkeypatch: pytest.MonkeyPatch) -> None:
    opts = Options()
    assert opts.random_seed == 1978
    assert "nc_workspace" in opts.workspace
    assert opts.resume_from is None and opts.tensorboard is False
    opts.set_random_seed(7)
    opts.set_workspace("/tmp/ws")
    opts.set_resume_from("/tmp/history.snapshot")
    opts.set_tensorboard(True)
    assert (opts.random_seed, opts.workspace, opts.resume_from, opts.tensorboard) == (
        7,
        "/tmp/ws",
        "/tmp/history.snapshot",
        True,
    )
    with pytest.raises(ConfigValueError, match="random_seed"):
        opts.set_random_seed("7")  # type: ignore[arg-type]
    with pytest.raises(ConfigValueError, match="tensorboard"):
        opts.set_tensorboard(1)  # type: ignore[arg-type]
    with pytest.raises(ConfigValueError, match="workspace"):
        opts.set_workspace(None)  # type: ignore[arg-type]


def test_module_level_setters_change_global_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cfg, "options", Options())
    cfg.set_random_seed(42)
    cfg.set_workspace("/tmp/x")
    cfg.set_resume_from(None)
    cfg.set_tensorboard(True)
    assert cfg.options.random_seed == 42 and cfg.options.workspace == "/tmp/x"
    assert cfg.options.tensorboard is True


# -- criteria ---------------------------------------------------------------------------
def test_accuracy_criterion_defaults_aliases_and_goal() -> None:
    ac = AccuracyCriterion()
    assert (ac.higher_is_better, ac.criterion, ac.tolerable_loss) == (True, "relative", 0.01)
    assert ac.keys() == ("higher_is_better", "criterion", "tolerable_loss")
    assert ac.relative == 0.01 and ac.absolute is None
    ac.absolute = 0.5
    assert ac.criterion == "absolute" and ac.absolute == 0.5 and ac.relative is None
    assert ac.target(10.0) == 9.5
    ac.relative = 0.1
    assert ac.criterion == "relative" and ac.target(10.0) == pytest.approx(9.0)
    assert ac.is_met(9.0, 10.0) and not ac.is_met(8.9, 10.0)
    low = AccuracyCriterion(higher_is_better=False, criterion="absolute", tolerable_loss=1.0)
    assert low.target(5.0) == 6.0 and low.is_met(6.0, 5.0) and not low.is_met(6.1, 5.0)


def test_accuracy_criterion_accepts_int_zero_unlike_inc() -> None:
    ac = AccuracyCriterion(tolerable_loss=0)
    assert ac.tolerable_loss == 0.0 and isinstance(ac.tolerable_loss, float)


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"criterion": "percent"}, "criterion", "'relative', 'absolute'"),
        ({"tolerable_loss": -0.1}, "tolerable_loss", "[0.0, inf]"),
        ({"tolerable_loss": "0.01"}, "tolerable_loss", "float"),
        ({"tolerable_loss": float("nan")}, "tolerable_loss", "float"),
        ({"higher_is_better": "yes"}, "higher_is_better", "True or False"),
    ],
)
def test_accuracy_criterion_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: AccuracyCriterion(**kwargs), param, fragment)


def test_accuracy_criterion_validates_assignment() -> None:
    ac = AccuracyCriterion()
    with pytest.raises(ConfigValueError, match="criterion"):
        ac.criterion = "other"


def test_tuning_criterion_defaults_and_values() -> None:
    tc = TuningCriterion()
    assert (tc.strategy, tc.strategy_kwargs, tc.timeout, tc.max_trials, tc.objective) == (
        "basic",
        None,
        0,
        100,
        "performance",
    )
    for strategy in (
        "mse",
        "bayesian",
        "random",
        "exhaustive",
        "sigopt",
        "tpe",
        "mse_v2",
        "hawq_v2",
    ):
        assert TuningCriterion(strategy=strategy).strategy == strategy
    obj = {
        "objective": ["accuracy", "performance"],
        "weight": [0.8, 0.2],
        "higher_is_better": [True, False],
    }
    assert TuningCriterion(objective=obj, strategy_kwargs={"a": 1}).objective == obj


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"strategy": "greedy"}, "strategy", "'basic'"),
        ({"timeout": -1}, "timeout", ">= 0"),
        ({"timeout": 1.5}, "timeout", "an int"),
        ({"max_trials": 0}, "max_trials", ">= 1"),
        ({"objective": "speed"}, "objective", "'performance'"),
        ({"objective": {"objective": ["accuracy"], "weight": [0.5, 0.5]}}, "objective", "weight"),
        ({"objective": {"objective": ["latency"]}}, "objective", "objective"),
        ({"strategy_kwargs": [1]}, "strategy_kwargs", "a dict"),
    ],
)
def test_tuning_criterion_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: TuningCriterion(**kwargs), param, fragment)


# -- quantization -------------------------------------------------------------------------
def test_ptq_defaults() -> None:
    c = PostTrainingQuantConfig()
    assert c.device == "cpu" and c.backend == "default" and c.domain == "auto"
    assert c.quant_format == "default" and c.inputs == [] and c.outputs == []
    assert c.approach == "post_training_static_quant"
    assert c.calibration_sampling_size == [100]
    assert c.op_type_dict is None and c.op_name_dict is None and c.reduce_range is None
    assert c.example_inputs is None and c.excluded_precisions == [] and c.quant_level == "auto"
    assert c.diagnosis is False and c.use_bf16 is True
    assert c.recipes["smooth_quant"] is False and c.recipes["gemm_to_matmul"] is True
    assert set(c.recipes) == set(_RECIPE_DEFAULTS)
    assert c.accuracy_criterion.to_dict() == AccuracyCriterion().to_dict()
    assert c.tuning_criterion.to_dict() == TuningCriterion().to_dict()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("static", "post_training_static_quant"),
        ("dynamic", "post_training_dynamic_quant"),
        ("auto", "post_training_auto_quant"),
        ("post_training_static_quant", "post_training_static_quant"),
        ("post_training_dynamic_quant", "post_training_dynamic_quant"),
    ],
)
def test_ptq_approach_normalised(given: str, stored: str) -> None:
    assert PostTrainingQuantConfig(approach=given).approach == stored


def test_ptq_accepted_values() -> None:
    op = {
        "Linear": {"weight": {"dtype": ["fp32"]}},
        "conv.*": {"activation": {"algorithm": ["kl"], "dtype": ["uint8"]}},
    }
    c = PostTrainingQuantConfig(
        device="gpu",
        backend="ipex",
        domain="nlp",
        recipes={"smooth_quant": True, "smooth_quant_args": {"alpha": "auto"}},
        quant_format="QDQ",
        calibration_sampling_size=50,
        op_type_dict=op,
        op_name_dict={"fc1": {"weight": {"granularity": ["per_tensor"], "scheme": ["sym"]}}},
        reduce_range=True,
        excluded_precisions=["bf16"],
        quant_level=1,
        example_inputs=torch.zeros(1),
    )
    assert c.calibration_sampling_size == [50] and c.recipes["smooth_quant"] is True
    assert c.recipes["fast_bias_correction"] is False  # filled with its default
    assert c.op_type_dict == op and c.op_type_dict is not op  # copied
    assert c.use_bf16 is False and c.quant_level == 1
    assert PostTrainingQuantConfig(quant_level=0).quant_level == 0


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"device": "tpu"}, "device", "'cpu', 'gpu'"),
        ({"backend": "tensorrt"}, "backend", "'ipex'"),
        ({"domain": "audio"}, "domain", "'nlp'"),
        ({"quant_format": "qdq"}, "quant_format", "'QDQ'"),
        ({"approach": "weight_only"}, "approach", "'static'"),
        ({"approach": 1}, "approach", "'dynamic'"),
        ({"calibration_sampling_size": 0}, "calibration_sampling_size", "> 0"),
        ({"calibration_sampling_size": [10, "x"]}, "calibration_sampling_size", "list of ints"),
        ({"reduce_range": 1}, "reduce_range", "or None"),
        ({"excluded_precisions": ["int4"]}, "excluded_precisions", "'bf16'"),
        ({"quant_level": 2}, "quant_level", "'auto', 0, 1"),
        ({"quant_level": True}, "quant_level", "'auto', 0, 1"),
        (
            {"accuracy_criterion": {"tolerable_loss": 0.01}},
            "accuracy_criterion",
            "AccuracyCriterion",
        ),
        ({"tuning_criterion": 5}, "tuning_criterion", "TuningCriterion"),
        ({"diagnosis": "no"}, "diagnosis", "True or False"),
        ({"inputs": "x"}, "inputs", "list of str"),
        ({"recipes": {"smooth": True}}, "recipes", "smooth_quant"),
        ({"recipes": {"smooth_quant": 1}}, "recipes['smooth_quant']", "True or False"),
        (
            {"recipes": {"smooth_quant_args": {"alpha": 2.0}}},
            "recipes['smooth_quant_args']['alpha']",
            "'auto'",
        ),
        (
            {"recipes": {"graph_optimization_level": "FAST"}},
            "recipes['graph_optimization_level']",
            "ENABLE_ALL",
        ),
        (
            {"op_type_dict": {"Linear": {"weight": {"dtype": "fp32"}}}},
            "op_type_dict['Linear']['weight']['dtype']",
            "list",
        ),
        (
            {"op_type_dict": {"Linear": {"weight": {"dtype": ["int4"]}}}},
            "op_type_dict['Linear']['weight']['dtype']",
            "fp32",
        ),
        ({"op_type_dict": {"Linear": {"bias": {}}}}, "op_type_dict['Linear']", "'weight'"),
        (
            {"op_name_dict": {"fc": {"weight": {"bits": [8]}}}},
            "op_name_dict['fc']['weight']",
            "'granularity'",
        ),
        (
            {"op_name_dict": {"fc": {"weight": {"algorithm": ["kl"]}}}},
            "op_name_dict['fc']['weight']['algorithm']",
            "minmax",
        ),
        ({"op_name_dict": {"fc(": {}}}, "op_name_dict", "regular expression"),
        ({"op_name_dict": ["fc"]}, "op_name_dict", "a dict"),
    ],
)
def test_ptq_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: PostTrainingQuantConfig(**kwargs), param, fragment)


def test_activation_dtype_none_string_is_allowed() -> None:
    c = PostTrainingQuantConfig(op_type_dict={"Add": {"activation": {"dtype": ["None"]}}})
    assert c.op_type_dict == {"Add": {"activation": {"dtype": ["None"]}}}


def test_defaults_are_not_shared_between_configs() -> None:
    a, b = PostTrainingQuantConfig(), PostTrainingQuantConfig()
    assert a.accuracy_criterion is not b.accuracy_criterion
    assert a.tuning_criterion is not b.tuning_criterion
    assert a.recipes is not b.recipes and a.inputs is not b.inputs
    a.tuning_criterion.max_trials = 3
    a.inputs.append("x")
    assert b.tuning_criterion.max_trials == 100 and b.inputs == []
    q1, q2 = QuantizationAwareTrainingConfig(), QuantizationAwareTrainingConfig()
    assert q1.accuracy_criterion is not q2.accuracy_criterion
    d1, d2 = DistillationConfig(), DistillationConfig()
    assert d1.criterion is not d2.criterion and d1.optimizer is not d2.optimizer


def test_diagnosis_changes_only_its_own_tuning_criterion() -> None:
    shared = TuningCriterion(max_trials=50)
    c = PostTrainingQuantConfig(tuning_criterion=shared, diagnosis=True)
    assert c.tuning_criterion.max_trials == 1
    assert shared.max_trials == 50
    assert PostTrainingQuantConfig().tuning_criterion.max_trials == 100


def test_qat_defaults_and_read_only_approach() -> None:
    q = QuantizationAwareTrainingConfig()
    assert q.approach == "quant_aware_training"
    assert q.device == "cpu" and q.backend == "default" and q.model_name == ""
    assert q.inputs == [] and q.op_type_dict is None and q.excluded_precisions == []
    assert q.quant_level == "auto" and q.reduce_range is None
    with pytest.raises(AttributeError):
        q.approach = "static"  # type: ignore[misc]
    q2 = QuantizationAwareTrainingConfig(
        op_name_dict={"head": {"weight": {"dtype": ["fp32"]}}}, model_name="m"
    )
    assert q2.op_name_dict == {"head": {"weight": {"dtype": ["fp32"]}}}


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"device": "npu"}, "device"),
        ({"backend": "onnx"}, "backend"),
        ({"model_name": 3}, "model_name"),
        (
            {"op_type_dict": {"Linear": {"weight": {"scheme": ["sym4"]}}}},
            "op_type_dict['Linear']['weight']['scheme']",
        ),
        ({"quant_format": "x"}, "quant_format"),
    ],
)
def test_qat_rejects(kwargs, param) -> None:
    rejects(lambda: QuantizationAwareTrainingConfig(**kwargs), param)


def test_qat_positional_order_matches_inc() -> None:
    q = QuantizationAwareTrainingConfig("cpu", "ipex", ["in"], ["out"])
    assert q.backend == "ipex" and q.inputs == ["in"] and q.outputs == ["out"]


# -- pruning -------------------------------------------------------------------------
def test_weight_pruning_defaults() -> None:
    c = WeightPruningConfig()
    wc = c.weight_compression
    assert wc.target_sparsity == 0.9 and wc["pruning_type"] == "snip_momentum"
    assert wc.pattern == "4x1" and wc.op_names == [] and wc.excluded_op_names == []
    assert (wc.start_step, wc.end_step, wc.pruning_frequency) == (0, 0, 1)
    assert wc.pruning_scope == "global" and wc.sparsity_decay_type == "exp"
    assert (wc.min_sparsity_ratio_per_op, wc.max_sparsity_ratio_per_op) == (0.0, 0.98)
    assert wc.pruning_op_types == ["Conv", "Linear"]
    assert c.pruning_configs == [{}] and c.backend is None
    assert c.target_sparsity == 0.9  # read-through of the global values
    (info,) = process_pruning_config(c)
    assert info == {
        "target_sparsity": 0.9,
        "pruning_type": "snip_momentum",
        "pattern": "4x1",
        "op_names": [".*"],
        "excluded_op_names": [],
        "start_step": 0,
        "end_step": 0,
        "pruning_scope": "global",
        "pruning_frequency": 1,
        "min_sparsity_ratio_per_op": 0.0,
        "max_sparsity_ratio_per_op": 0.98,
        "sparsity_decay_type": "exp",
        "pruning_op_types": ["Conv", "Linear"],
        "reg_type": None,
        "reg_coeff": 0.0,
        "criterion_reduce_type": "mean",
        "resume_from_pruned_checkpoint": False,
        "lock_init_sparsity": False,
        "shrink": False,
        "parameters": {"reg_coeff": 0.0},
    }


def test_weight_compression_has_kwargs_and_attribute_access() -> None:
    c = WeightPruningConfig(reg_type="group_lasso", reg_coeff=0.2, lock_init_sparsity=True)
    assert c.weight_compression.reg_type == "group_lasso"
    assert c.weight_compression["reg_coeff"] == 0.2
    (info,) = process_pruning_config(c)
    # an explicit top-level reg_coeff is not overwritten by the default parameters
    assert info["reg_coeff"] == 0.2 and info["parameters"] == {"reg_coeff": 0.2}
    assert info["lock_init_sparsity"] is True
    c.weight_compression.target_sparsity = 0.3  # read again by process_pruning_config
    assert process_pruning_config(c)[0]["target_sparsity"] == 0.3


def test_local_configs_fill_from_globals_one_pruner_each() -> None:
    c = WeightPruningConfig(
        pruning_configs=[
            {"op_names": ["fc1"], "pattern": "2:4", "target_sparsity": 0.5},
            {
                "op_names": ["fc2"],
                "pruning_scope": "local",
                "parameters": {"reg_coeff": 0.7},
                "reg_type": "group_lasso",
            },
            {"op_names": ["head"], "target_sparsity": None},
        ],
        target_sparsity=0.8,
        pruning_type="magnitude",
        start_step=1,
        end_step=9,
        pattern="tile_pattern_1x1",
    )
    first, second, third = process_pruning_config(c)
    assert (
        first["op_names"] == ["fc1"]
        and first["pattern"] == "2:4"
        and first["target_sparsity"] == 0.5
    )
    assert first["pruning_type"] == "magnitude" and first["end_step"] == 9
    assert second["pattern"] == "1x1"  # the ignored prefix is stripped
    assert second["pruning_scope"] == "local" and second["reg_coeff"] == 0.7
    assert second["parameters"] == {"reg_coeff": 0.7} and second["target_sparsity"] == 0.8
    assert third["target_sparsity"] == 0.8  # a local None means "not set"


def test_global_none_resets_to_default() -> None:
    (info,) = process_pruning_config(WeightPruningConfig(target_sparsity=None, pattern=None))  # type: ignore[arg-type]
    assert info["target_sparsity"] == 0.9 and info["pattern"] == "4x1"


def test_empty_pruning_configs_means_one_global_pruner() -> None:
    assert (
        len(process_pruning_config(WeightPruningConfig(pruning_configs=[], target_sparsity=0.4)))
        == 1
    )


def test_process_accepts_a_mapping() -> None:
    infos = process_pruning_config(
        {"target_sparsity": 0.5, "pruning_configs": [{"op_names": ["a"]}, {"op_names": ["b"]}]}
    )
    assert [i["op_names"] for i in infos] == [["a"], ["b"]]
    assert all(i["target_sparsity"] == 0.5 for i in infos)


def test_unknown_pruning_keys_warn_with_their_name() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = WeightPruningConfig(pruning_configs=[{"op_names": ["fc"], "beta": 1}], alpha=0.1)
    messages = [str(w.message) for w in caught]
    assert any("alpha is not supported for config" in m for m in messages)
    assert any("beta is not supported for config" in m for m in messages)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert process_pruning_config(c)[0]["beta"] == 1  # kept for the pruner
    assert len(again) == 2


def test_known_extra_keys_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WeightPruningConfig(
            reg_type="group_lasso",
            reg_coeff=0.1,
            criterion_reduce_type="max",
            resume_from_pruned_checkpoint=True,
            lock_init_sparsity=True,
            parameters={"reg_coeff": 0.1},
        )


@pytest.mark.parametrize(
    "pattern",
    [
        "4x1",
        "1x1",
        "2x2",
        "channelx1",
        "1xchannel",
        "channelx4",
        "1:4",
        "2:4",
        "mha",
        "tile_pattern_4x1",
    ],
)
def test_patterns_accepted(pattern: str) -> None:
    WeightPruningConfig(pattern=pattern, target_sparsity=0.25)


def test_pattern_lock_may_exceed_n_over_m() -> None:
    WeightPruningConfig(pattern="2:4", pruning_type="pattern_lock", target_sparsity=0.8)


@pytest.mark.parametrize(
    "pruning_type",
    [
        "magnitude",
        "gradient",
        "snip",
        "snip_momentum",
        "snip_momentum_block",
        "retrain_free",
        "magnitude_progressive",
        "snip_momentum_progressive",
        "pattern_lock",
    ],
)
def test_pruning_types_accepted(pruning_type: str) -> None:
    WeightPruningConfig(pruning_type=pruning_type, end_step=0)


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"target_sparsity": 1.0}, "target_sparsity", "[0.0, 1.0)"),
        ({"target_sparsity": -0.1}, "target_sparsity", "[0.0, 1.0)"),
        ({"target_sparsity": "0.5"}, "target_sparsity", "float"),
        ({"pruning_type": "l1"}, "pruning_type", "'magnitude'"),
        ({"pattern": "4x"}, "pattern", "NxM"),
        ({"pattern": "0x1"}, "pattern", "NxM"),
        ({"pattern": "4:2"}, "pattern", "M > N"),
        ({"pattern": "2:4", "target_sparsity": 0.6}, "target_sparsity", "N/M"),
        (
            {"pattern": "2:4", "pruning_type": "retrain_free", "target_sparsity": 0.5},
            "pattern",
            "NxM",
        ),
        ({"start_step": -1}, "start_step", ">= 0"),
        ({"start_step": 5, "end_step": 2}, "end_step", "start_step"),
        (
            {"pruning_type": "pattern_lock", "start_step": 0, "end_step": 3},
            "end_step",
            "pattern_lock",
        ),
        ({"pruning_frequency": 0}, "pruning_frequency", ">= 1"),
        ({"pruning_scope": "layer"}, "pruning_scope", "'global', 'local'"),
        ({"max_sparsity_ratio_per_op": 1.0}, "max_sparsity_ratio_per_op", "[0.0, 1.0)"),
        (
            {"min_sparsity_ratio_per_op": 0.5, "max_sparsity_ratio_per_op": 0.4},
            "min_sparsity_ratio_per_op",
            "max_sparsity_ratio_per_op",
        ),
        ({"sparsity_decay_type": "step"}, "sparsity_decay_type", "'cube'"),
        ({"op_names": "fc1"}, "op_names", "list of str"),
        ({"op_names": ["fc1("]}, "op_names", "regular expression"),
        ({"excluded_op_names": [3]}, "excluded_op_names", "list of str"),
        ({"pruning_op_types": "Linear"}, "pruning_op_types", "list of str"),
        ({"reg_type": "l2"}, "reg_type", "'group_lasso'"),
        (
            {"reg_type": "group_lasso", "pattern": "2:4", "target_sparsity": 0.5},
            "reg_type",
            "needs an NxM",
        ),
        ({"reg_coeff": -1.0}, "reg_coeff", "[0.0, inf]"),
        ({"criterion_reduce_type": "median"}, "criterion_reduce_type", "'mean'"),
        ({"lock_init_sparsity": "yes"}, "lock_init_sparsity", "True or False"),
        ({"resume_from_pruned_checkpoint": 1}, "resume_from_pruned_checkpoint", "True or False"),
        ({"parameters": [("reg_coeff", 1)]}, "parameters", "a dict"),
        ({"backend": "itex"}, "backend", "PyTorch"),
        ({"pruning_configs": {"op_names": ["a"]}}, "pruning_configs", "list of dicts"),
    ],
)
def test_weight_pruning_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: WeightPruningConfig(**kwargs), param, fragment)


def test_local_rejection_names_the_pruner() -> None:
    err = rejects(
        lambda: WeightPruningConfig(pruning_configs=[{}, {"target_sparsity": 2.0}]),
        "target_sparsity",
    )
    assert "pruning_configs[1]" in str(err)


def test_pruning_inputs_are_copied() -> None:
    op_names = ["fc1"]
    local = {"op_names": ["fc2"]}
    c = WeightPruningConfig(pruning_configs=[local], op_names=op_names)
    op_names.append("x")
    local["op_names"].append("y")
    assert c.weight_compression.op_names == ["fc1"]
    assert c.pruning_configs == [{"op_names": ["fc2"]}]
    assert WeightPruningConfig().pruning_configs is not WeightPruningConfig().pruning_configs


# -- distillation ----------------------------------------------------------------------
def test_kd_loss_config_defaults_and_config_dict() -> None:
    kd = KnowledgeDistillationLossConfig()
    assert kd.config == {
        "KnowledgeDistillationLoss": {
            "temperature": 1.0,
            "loss_types": ["CE", "CE"],
            "loss_weights": [0.5, 0.5],
        }
    }
    kd2 = KnowledgeDistillationLossConfig(
        temperature=2, loss_types=["MSE", "KL"], loss_weights=[0.3, 0.7]
    )
    assert kd2.temperature == 2.0 and kd2.config.KnowledgeDistillationLoss["loss_types"] == [
        "MSE",
        "KL",
    ]
    assert KnowledgeDistillationLossConfig(loss_weights=[0, 1]).loss_weights == [0.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"temperature": 0}, "temperature", "(0.0, inf]"),
        ({"loss_types": ["KL", "CE"]}, "loss_types", "'CE'/'MSE'"),
        ({"loss_types": ["CE", "L1"]}, "loss_types", "'CE'/'KL'/'MSE'"),
        ({"loss_types": ["CE"]}, "loss_types", "student-vs-teacher"),
        ({"loss_weights": [0.5, 0.6]}, "loss_weights", "summing to 1"),
        ({"loss_weights": [1.5, -0.5]}, "loss_weights", "[0.0, 1.0]"),
        ({"loss_weights": [1.0]}, "loss_weights", "2 floats"),
    ],
)
def test_kd_loss_config_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: KnowledgeDistillationLossConfig(**kwargs), param, fragment)


def test_intermediate_layers_config_forms_and_defaults() -> None:
    mappings = [
        [("s.layer1", "0"), ("t.layer1", "0")],
        [("s.layer2",), ("t.layer2",)],
        [("shared.layer", "1")],
        [("s.fn", lambda x: x), "t.fn"],
    ]
    c = IntermediateLayersKnowledgeDistillationLossConfig(layer_mappings=mappings)
    assert (
        c.loss_types == ["MSE"] * 4 and c.loss_weights == [0.25] * 4 and c.add_origin_loss is False
    )
    body = c.config["IntermediateLayersKnowledgeDistillationLoss"]
    assert body["layer_mappings"] == mappings and body["loss_types"] == ["MSE"] * 4
    c2 = IntermediateLayersKnowledgeDistillationLossConfig(
        layer_mappings=mappings[:2],
        loss_types=["KL", "L1"],
        loss_weights=[0.9, 0.9],
        add_origin_loss=True,
    )
    assert c2.loss_weights == [0.9, 0.9]  # need not sum to 1
    assert (
        IntermediateLayersKnowledgeDistillationLossConfig().config[
            "IntermediateLayersKnowledgeDistillationLoss"
        ]["layer_mappings"]
        == []
    )


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"layer_mappings": "a"}, "layer_mappings", "list"),
        ({"layer_mappings": [[("a",), ("b",), ("c",)]]}, "layer_mappings", "student_layer"),
        ({"layer_mappings": [[(1,), ("b",)]]}, "layer_mappings", "student_layer"),
        ({"layer_mappings": [[("a", 3), ("b",)]]}, "layer_mappings", "student_layer"),
        ({"layer_mappings": [[("a",)]], "loss_types": ["CE"]}, "loss_types", "'MSE', 'KL', 'L1'"),
        ({"layer_mappings": [[("a",)]], "loss_types": ["MSE", "MSE"]}, "loss_types", "1 items"),
        ({"layer_mappings": [[("a",)]], "loss_weights": [1.5]}, "loss_weights", "[0.0, 1.0]"),
        ({"layer_mappings": [[("a",)]], "add_origin_loss": 1}, "add_origin_loss", "True or False"),
    ],
)
def test_intermediate_layers_config_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: IntermediateLayersKnowledgeDistillationLossConfig(**kwargs), param, fragment)


def test_self_kd_config_defaults_and_values() -> None:
    groups = [[["res0", "res3"], ["res1", "res3"]], [["logits0", "logits3"]]]
    c = SelfKnowledgeDistillationLossConfig(layer_mappings=groups, temperature=3.0)
    assert c.loss_types == ["CE", "CE"] and c.loss_weights == [0.5, 0.5]
    body = c.config["SelfKnowledgeDistillationLoss"]
    assert body["layer_mappings"] == groups and body["temperature"] == 3.0
    c2 = SelfKnowledgeDistillationLossConfig(groups, 3.0, ["L2", "KL"], [0.03, 0.3], True)
    assert c2.loss_types == ["L2", "KL"] and c2.add_origin_loss is True


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"layer_mappings": [["a", "b"]]}, "layer_mappings", "groups"),
        ({"layer_mappings": [[["a", 1]]]}, "layer_mappings", "pairs of str"),
        ({"layer_mappings": [[["a", "b"]]], "loss_types": ["MSE"]}, "loss_types", "'L2'"),
        (
            {"layer_mappings": [[["a", "b"]]], "loss_weights": [0.5, 0.5]},
            "loss_weights",
            "1 floats",
        ),
        ({"temperature": -1.0}, "temperature", "(0.0, inf]"),
    ],
)
def test_self_kd_config_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: SelfKnowledgeDistillationLossConfig(**kwargs), param, fragment)


def test_distillation_config_positional_order_and_defaults() -> None:
    teacher = torch.nn.Linear(2, 2)
    crit = KnowledgeDistillationLossConfig(temperature=4.0)
    d = DistillationConfig(teacher, crit, {"Adam": {"learning_rate": 0.1}})
    assert (
        d.teacher_model is teacher
        and d.criterion is crit
        and d.optimizer == {"Adam": {"learning_rate": 0.1}}
    )
    default = DistillationConfig()
    assert default.teacher_model is None
    assert isinstance(default.criterion, KnowledgeDistillationLossConfig)
    assert default.optimizer == {"SGD": {"learning_rate": 0.0001}}
    assert DistillationConfig(
        teacher, IntermediateLayersKnowledgeDistillationLossConfig()
    ).criterion.config


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"teacher_model": "bert-base"}, "teacher_model", "torch.nn.Module"),
        (
            {"criterion": {"KnowledgeDistillationLoss": {}}},
            "criterion",
            "KnowledgeDistillationLossConfig",
        ),
        ({"optimizer": "SGD"}, "optimizer", "a dict"),
    ],
)
def test_distillation_config_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: DistillationConfig(**kwargs), param, fragment)


# -- mixed precision, benchmark -------------------------------------------------------
def test_mixed_precision_defaults_and_alias() -> None:
    m = MixedPrecisionConfig()
    assert m.precisions == ["bf16"] and m.use_bf16 and m.device == "cpu" and m.backend == "default"
    assert m.op_name_dict == {} and m.op_type_dict == {} and m.excluded_precisions == []
    assert m.example_inputs is None and m.model_name == "" and m.inputs == []
    assert MixedPrecisionConfig(precision="fp16").precisions == ["fp16"]
    assert MixedPrecisionConfig(precisions=["bf16", "fp16"]).precision == ["bf16", "fp16"]
    assert not MixedPrecisionConfig(precisions="fp16").use_bf16
    assert MixedPrecisionConfig().op_name_dict is not MixedPrecisionConfig().op_name_dict


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"precisions": "int8"}, "precisions", "'bf16', 'fp16'"),
        ({"precision": ["fp8"]}, "precision", "'bf16', 'fp16'"),
        ({"precisions": "fp16", "precision": "bf16"}, "precision", "give only one"),
        ({"device": "xpu"}, "device", "'cpu'"),
        ({"excluded_precisions": ["fp32"]}, "excluded_precisions", "'bf16'"),
        (
            {"op_type_dict": {"Linear": {"weight": {"dtype": ["int3"]}}}},
            "op_type_dict['Linear']['weight']['dtype']",
            "bf16",
        ),
    ],
)
def test_mixed_precision_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: MixedPrecisionConfig(**kwargs), param, fragment)


def test_benchmark_defaults_and_keys() -> None:
    b = BenchmarkConfig()
    assert (b.warmup, b.iteration, b.num_of_instance, b.cores_per_instance) == (5, -1, 1, None)
    assert b.backend == "default" and b.device == "cpu" and b.diagnosis is False
    assert b.inter_num_of_threads is None and b.intra_num_of_threads is None
    assert b.keys() == (
        "inputs",
        "outputs",
        "backend",
        "device",
        "warmup",
        "iteration",
        "model_name",
        "cores_per_instance",
        "num_of_instance",
        "framework",
        "inter_num_of_threads",
        "intra_num_of_threads",
    )
    b2 = BenchmarkConfig(
        warmup=0, iteration=10, cores_per_instance=2, num_of_instance=2, intra_num_of_threads=1
    )
    assert b2["iteration"] == 10 and b2["framework"] is None


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"warmup": -1}, "warmup", ">= 0"),
        ({"iteration": 0}, "iteration", "-1"),
        ({"iteration": -2}, "iteration", "-1"),
        ({"cores_per_instance": 0}, "cores_per_instance", ">= 1"),
        ({"num_of_instance": None}, "num_of_instance", "an int"),
        ({"inter_num_of_threads": 0}, "inter_num_of_threads", ">= 1"),
        ({"backend": "tf"}, "backend", "'default'"),
        ({"diagnosis": None}, "diagnosis", "True or False"),
    ],
)
def test_benchmark_rejects(kwargs, param, fragment) -> None:
    rejects(lambda: BenchmarkConfig(**kwargs), param, fragment)


def test_package_root_exports_inc_names() -> None:
    import neural_coder.runtime as rt

    for name in (
        "DistillationConfig",
        "PostTrainingQuantConfig",
        "WeightPruningConfig",
        "QuantizationAwareTrainingConfig",
        "MixedPrecisionConfig",
        "Model",
        "set_random_seed",
        "set_workspace",
        "set_resume_from",
        "set_tensorboard",
        "options",
        "prepare_compression",
        "load",
    ):
        assert hasattr(rt, name), name
