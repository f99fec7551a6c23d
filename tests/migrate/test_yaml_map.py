"""The conf.yaml side: safe loading, the schema, and the 1.x -> 2.x field tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.transforms.errors import ConfigError
from neural_coder.transforms.migrate_1x import yaml_map
from neural_coder.transforms.migrate_1x.codegen import Call, Code, render


def load(tmp_path: Path, text: str) -> yaml_map.YamlDoc:
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    return yaml_map.load(path)


# -- loading -------------------------------------------------------------------------


def test_a_missing_yaml_is_an_error_naming_the_path(tmp_path):
    with pytest.raises(ConfigError) as info:
        yaml_map.load(tmp_path / "nowhere.yaml")
    assert "nowhere.yaml" in str(info.value)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['echo pwned > pwned.txt']",
        "!!python/name:os.system",
        "!!python/object:collections.OrderedDict {}",
        "!Unknown {a: 1}",
    ],
)
def test_python_and_unknown_tags_are_refused_never_executed(tmp_path, tag, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"model:\n  name: m\n  framework: pytorch\ntuning:\n  random_seed: {tag}\n")
    assert info.value.line == 5
    assert "refused" in info.value.message
    assert not (tmp_path / "pwned.txt").exists()


def test_the_pruner_tag_reads_as_a_mapping(tmp_path):
    doc = load(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression:\n      pruners:\n"
        "        - !Pruner\n            names: ['a.weight']\n",
    )
    pruner = doc.data["pruning"]["approach"]["weight_compression"]["pruners"][0]
    assert pruner == {"names": ["a.weight"]}


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        (
            "tuning:\n  exit_policy:\n    max_trial: 10\n",
            "tuning.exit_policy.max_trial",
            3,
            "unknown key",
        ),
        (
            "quantization:\n  aproach: quant_aware_training\n",
            "quantization.aproach",
            2,
            "allowed here: approach",
        ),
        (
            "tuning:\n  exit_policy:\n    max_trials: ten\n",
            "tuning.exit_policy.max_trials",
            3,
            "expected an integer",
        ),
        ("tuning:\n  random_seed: true\n", "tuning.random_seed", 2, "expected an integer"),
        ("quantization:\n  approach: int8\n", "quantization.approach", 2, "not allowed"),
        (
            "pruning:\n  approach:\n    weight_compression:\n      names: fc.weight\n",
            "pruning.approach.weight_compression.names",
            4,
            "expected a list",
        ),
        (
            "pruning:\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            nmes: [a]\n",
            "pruning.approach.weight_compression.pruners[0].nmes",
            6,
            "unknown key",
        ),
        ("- just\n- a list\n", "", 1, "mapping at the top level"),
        (
            "tuning:\n  accuracy_criterion:\n    relative: one percent\n",
            "tuning.accuracy_criterion.relative",
            3,
            "expected a number or a percentage string",
        ),
        (
            "quantization:\n  calibration:\n    sampling_size: '100, lots'\n",
            "quantization.calibration.sampling_size",
            3,
            "comma string",
        ),
        ("model:\n  name: a\nmodel:\n  name: b\n", "`model` is written twice", 3, "lines 1 and 3"),
        ("tuning: {random_seed: 1, random_seed: 2}\n", "`random_seed`", 1, "written twice"),
        ("tuning:\n  diagnosis: &d [*d]\n", "tuning.diagnosis[0]", 2, "recursive alias"),
    ],
)
def test_schema_errors_name_the_key_the_line_and_what_is_allowed(tmp_path, text, key, line, words):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.line == line
    assert key in info.value.message
    assert words in info.value.message


def test_aliases_that_expand_without_end_are_refused(tmp_path):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "\n".join(lines) + "\n")
    assert "expands to more than" in info.value.message


def test_merge_keys_may_override_what_they_merge(tmp_path):
    doc = load(
        tmp_path,
        "tuning:\n  exit_policy:\n    <<: {timeout: 1, max_trials: 2}\n    max_trials: 5\n",
    )
    assert doc.data["tuning"]["exit_policy"] == {"timeout": 1, "max_trials": 5}
    assert doc.line(("tuning", "exit_policy", "max_trials")) == 4


def test_null_sections_read_as_empty_mappings_like_1x(tmp_path):
    doc = load(tmp_path, "evaluation:\n  accuracy:\n    metric:\n      Accuracy:\n")
    assert doc.get("evaluation", "accuracy", "metric", "Accuracy") == {}


def test_every_schema_key_has_a_row_in_the_field_table():
    missing = [
        yaml_map.dotted(keys)
        for keys in _schema_leaves(yaml_map.SCHEMA, ())
        if yaml_map.rule_for(keys) is None
    ]
    assert missing == []


def _schema_leaves(spec, keys):
    if isinstance(spec, dict):
        for k, v in spec.items():
            yield from _schema_leaves(v, (*keys, k))
    elif isinstance(spec, yaml_map.ListOf) and isinstance(spec.item, dict):
        yield from _schema_leaves(spec.item, (*keys, 0))
    else:
        yield keys


# -- field tables ----------------------------------------------------------------------


def quant(tmp_path, text):
    doc = load(tmp_path, text)
    notes = yaml_map.Notes()
    return yaml_map.quantization(doc, notes), notes, doc


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("quantization: {approach: post_training_static_quant}", {"approach": "static"}),
        ("quantization: {approach: post_training_dynamic_quant}", {"approach": "dynamic"}),
        ("quantization: {approach: post_training_auto_quant}", {"approach": "auto"}),
        ("quantization: {calibration: {sampling_size: 300}}", {"calibration_sampling_size": [300]}),
        (
            "quantization: {calibration: {sampling_size: '100, 500'}}",
            {"calibration_sampling_size": [100, 500]},
        ),
        (
            "quantization: {calibration: {sampling_size: [8, 16]}}",
            {"calibration_sampling_size": [8, 16]},
        ),
        ("device: gpu", {"device": "gpu"}),
        ("model: {name: m, framework: pytorch_ipex}", {"backend": "ipex"}),
        ("model: {name: m, framework: onnxrt_qdq}", {"quant_format": "QDQ"}),
        ("model: {name: m, framework: onnxrt_integerops}", {"approach": "dynamic"}),
        ("use_bf16: false", {"excluded_precisions": ["bf16"]}),
        ("quantization: {optimization_level: 0}", {"quant_level": 0}),
        (
            "quantization: {recipes: {fast_bias_correction: true}}",
            {"recipes": {"fast_bias_correction": True}},
        ),
        (
            "quantization: {model_wise: {weight: {granularity: 'per_channel', scheme: sym}}}",
            {
                "op_type_dict": {
                    ".*": {"weight": {"granularity": ["per_channel"], "scheme": ["sym"]}}
                }
            },
        ),
        (
            "quantization: {op_wise: {'fc': {activation: {dtype: [fp32]}}}}",
            {"op_name_dict": {"fc": {"activation": {"dtype": ["fp32"]}}}},
        ),
        ("tuning: {diagnosis: {diagnosis_after_tuning: true}}", {"diagnosis": True}),
    ],
)
def test_quantization_fields(tmp_path, yaml_text, expected):
    q, notes, _ = quant(tmp_path, yaml_text)
    assert {k: q.kwargs[k] for k in expected} == expected
    assert [n for n in notes if n.kind == "TODO"] == []


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "tuning: {accuracy_criterion: {relative: 0.02}}",
            'accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.02)',
        ),
        ("tuning: {accuracy_criterion: {relative: '1%'}}", "tolerable_loss=0.01"),
        (
            "tuning: {accuracy_criterion: {absolute: 1, higher_is_better: false}}",
            'AccuracyCriterion(higher_is_better=False, criterion="absolute", tolerable_loss=1.0)',
        ),
        (
            "tuning: {exit_policy: {timeout: 60, max_trials: 600}}",
            "TuningCriterion(timeout=60, max_trials=600)",
        ),
        (
            "tuning: {strategy: {name: bayesian}}",
            'quant_level=1, tuning_criterion=TuningCriterion(strategy="bayesian")',
        ),
        ("tuning: {strategy: {name: conservative}}", "quant_level=0"),
        (
            "tuning: {strategy: {name: sigopt, sigopt_api_token: t, sigopt_project_id: p}}",
            'strategy_kwargs={"sigopt_api_token": "t", "sigopt_project_id": "p"}',
        ),
        ("tuning: {objective: modelsize}", 'TuningCriterion(objective="modelsize")'),
    ],
)
def test_tuning_fields(tmp_path, yaml_text, expected):
    import black

    q, _, _ = quant(tmp_path, yaml_text)
    code = black.format_str(
        render(Call("PostTrainingQuantConfig", q.kwargs)), mode=black.Mode(line_length=500)
    )
    assert expected in code


def test_tuning_statements(tmp_path):
    q, _, _ = quant(
        tmp_path,
        "tuning: {random_seed: 9527, tensorboard: true, workspace: {path: ./w, resume: ./w/h}}",
    )
    assert [render(c) for c in q.tuning.statements] == [
        "set_random_seed(9527)",
        "set_tensorboard(True)",
        "set_workspace('./w')",
        "set_resume_from('./w/h')",
    ]


@pytest.mark.parametrize(
    ("yaml_text", "todo"),
    [
        (
            "quantization: {recipes: {scale_propagation_concat: true}}",
            "quantization.recipes.scale_propagation_concat",
        ),
        (
            "quantization: {advance: {bias_correction: weight_empirical}}",
            "quantization.advance.bias_correction",
        ),
        ("quantization: {model_wise: {weight: {bit: 4}}}", "quantization.model_wise.weight.bit"),
        ("quantization: {model_wise: {activation: {compute_dtype: [int8]}}}", "compute_dtype"),
        (
            "quantization: {op_wise: {default_qconfig: {weight: {dtype: [int8]}}}}",
            "default_qconfig",
        ),
        ("tuning: {strategy: {name: hawq}}", "strategy `hawq` does not exist in 2.x"),
        ("tuning: {diagnosis: {op_list: [fc]}}", "tuning.diagnosis.op_list"),
        ("model: {name: m, framework: tensorflow}", "not a PyTorch framework"),
    ],
)
def test_fields_without_a_2x_home_are_todo_notes(tmp_path, yaml_text, todo):
    _, notes, _ = quant(tmp_path, yaml_text)
    assert any(n.kind == "TODO" and todo in n.message for n in notes), notes


def test_qat_takes_model_name_and_not_the_ptq_only_fields(tmp_path):
    q, notes, _ = quant(
        tmp_path,
        "model: {name: net, framework: pytorch_fx}\n"
        "quantization: {approach: quant_aware_training, calibration: {sampling_size: 10}, recipes: {weight_correction: true}}\n",
    )
    assert q.approach == "qat"
    assert q.kwargs == {"model_name": "net"}
    assert [n.kind for n in notes] == ["INFO", "TODO"]


def test_reading_marks_fields_consumed_and_leaves_the_rest(tmp_path):
    q, _, doc = quant(
        tmp_path, "tuning: {random_seed: 1}\nevaluation: {performance: {warmup: 3}}\n"
    )
    assert [yaml_map.dotted(k) for k, _ in doc.unconsumed()] == ["evaluation.performance.warmup"]


# -- pruning ---------------------------------------------------------------------------


def pruning(tmp_path, text):
    doc = load(tmp_path, text)
    notes = yaml_map.Notes()
    return yaml_map.pruning(doc, notes, "spe"), notes


def test_legacy_pruning_epochs_become_steps_and_names_become_module_regexes(tmp_path):
    p, notes = pruning(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression:\n"
        "      target_sparsity: 0.7\n      start_epoch: 1\n      end_epoch: 5\n"
        "      pruners:\n        - !Pruner\n            names: ['layer1.0.conv1.weight']\n            update_frequency: 2\n",
    )
    assert p.uses_epochs
    assert render(p.kwargs) == render(
        {
            "target_sparsity": 0.7,
            "pruning_type": "magnitude",
            "pattern": "1x1",
            "op_names": [yaml_map.Regex(r"^layer1\.0\.conv1$")],
            "start_step": Code("spe"),
            "end_step": Code("5 * spe"),
            "pruning_scope": "local",
            "pruning_frequency": Code("2 * spe"),
            "sparsity_decay_type": "linear",
        }
    )
    assert list(notes) == []


def test_the_1x_defaults_are_written_out_where_2x_defaults_differ(tmp_path):
    p, _ = pruning(
        tmp_path, "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n"
    )
    assert p.kwargs["target_sparsity"] == 0.97  # 2.x: 0.9
    assert p.kwargs["pattern"] == "1x1"  # 2.x: 4x1
    assert p.kwargs["pruning_type"] == "magnitude"  # 2.x: snip_momentum
    assert render(p.kwargs["end_step"]) == "4 * spe"  # 1.x end_epoch default 4


def test_pytorch_pruner_keys_map_one_to_one(tmp_path):
    p, notes = pruning(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression_pytorch:\n"
        "      start_step: 2\n      end_step: 20\n      update_frequency_on_step: 2\n"
        "      prune_type: snip_momentum\n      pattern: tile_pattern_4x1\n      prune_domain: local\n"
        "      max_sparsity_ratio_per_layer: 0.9\n      prune_layer_type: [Linear]\n"
        "      names: ['fc.*']\n      excluded_names: ['head']\n      sparsity_decay_type: cube\n",
    )
    assert not p.uses_epochs
    assert p.kwargs == {
        "target_sparsity": 0.97,
        "pruning_type": "snip_momentum",
        "pattern": "4x1",
        "op_names": [yaml_map.Regex("fc.*")],
        "excluded_op_names": [yaml_map.Regex("head")],
        "start_step": 2,
        "end_step": 20,
        "pruning_scope": "local",
        "pruning_frequency": 2,
        "max_sparsity_ratio_per_op": 0.9,
        "sparsity_decay_type": "cube",
        "pruning_op_types": ["Linear"],
    }
    assert list(notes) == []


def test_several_pruners_become_pruning_configs_and_pattern_lock_locks_once(tmp_path):
    p, notes = pruning(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 2\n      pruners:\n"
        "        - !Pruner\n            names: ['a.weight']\n"
        "        - !Pruner\n            prune_type: pattern_lock\n            start_epoch: 1\n            names: ['b.weight']\n",
    )
    configs = p.kwargs["pruning_configs"]
    assert configs[1]["pruning_type"] == "pattern_lock"
    assert configs[1]["start_step"] == configs[1]["end_step"] == Code("spe")


@pytest.mark.parametrize(
    ("pruner", "todo"),
    [
        ("initial_sparsity: 0.2", "initial_sparsity"),
        ("method: per_channel", "per_channel"),
        ("prune_type: gradient_sensitivity", "gradient_sensitivity"),
        ("prune_type: made_up", "does not exist in 2.x"),
        ("names: ['fc.bias']", "not a `.weight` parameter"),
    ],
)
def test_pruning_todos(tmp_path, pruner, todo):
    _, notes = pruning(
        tmp_path,
        f"pruning:\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            {pruner}\n",
    )
    assert any(n.kind == "TODO" and todo in n.message for n in notes), notes


def test_group_lasso_alpha_becomes_reg_coeff(tmp_path):
    p, _ = pruning(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression:\n      pruners:\n"
        "        - !Pruner\n            prune_type: group_lasso\n            parameters: {alpha: 0.01}\n",
    )
    assert p.kwargs["reg_type"] == "group_lasso"
    assert p.kwargs["parameters"] == {"reg_coeff": 0.01}


# -- distillation, mixed precision, benchmark ------------------------------------------


@pytest.mark.parametrize(
    ("flat", "nested"),
    [
        (["a", "b"], [["a"], ["b"]]),
        (["a", "a"], [["a"]]),
        (["a", "0", "b", "1"], [["a", "0"], ["b", "1"]]),
        (["a", "x", "a", "x"], [["a", "x"]]),
        (["a"], [["a"]]),
        ([["a", "0"], ["b", "0"]], [["a", "0"], ["b", "0"]]),
    ],
)
def test_intermediate_layer_mappings(flat, nested):
    assert yaml_map.layer_mappings_2x([flat]) == [nested]


def test_a_mapping_of_three_items_is_refused():
    with pytest.raises(ValueError):
        yaml_map.layer_mappings_2x([["a", "b", "c"]])


def test_distillation_criterion_and_optimizer(tmp_path):
    doc = load(
        tmp_path,
        "distillation:\n  train:\n    optimizer: {SGD: {learning_rate: 0.1}}\n"
        "    criterion:\n      KnowledgeDistillationLoss: {temperature: 2.0, loss_types: [CE, KL], loss_weights: [0.5, 0.5]}\n",
    )
    d = yaml_map.distillation(doc, yaml_map.Notes(), criterion_in_code=False)
    assert (
        render(d.criterion)
        == "KnowledgeDistillationLossConfig(temperature=2.0, loss_types=['CE', 'KL'], loss_weights=[0.5, 0.5])"
    )
    assert d.loss_types == ["CE", "KL"]
    assert d.optimizer == {"SGD": {"learning_rate": 0.1}}


def test_mixed_precision_drops_fp32(tmp_path):
    doc = load(
        tmp_path,
        "model: {name: m, framework: pytorch}\nmixed_precision: {precisions: 'bf16,fp32'}\n",
    )
    kwargs, _ = yaml_map.mixed_precision(doc, yaml_map.Notes())
    assert kwargs == {"model_name": "m", "precisions": "bf16"}


def test_benchmark_settings_come_from_evaluation_performance(tmp_path):
    doc = load(
        tmp_path,
        "evaluation:\n  performance:\n    warmup: 3\n    iteration: 30\n"
        "    configs: {cores_per_instance: 2, num_of_instance: 3, intra_num_of_threads: 2, kmp_blocktime: 1}\n",
    )
    notes = yaml_map.Notes()
    kwargs = yaml_map.benchmark(doc, notes, "performance")
    assert kwargs == {
        "warmup": 3,
        "iteration": 30,
        "cores_per_instance": 2,
        "num_of_instance": 3,
        "intra_num_of_threads": 2,
    }
    assert [n.kind for n in notes] == ["TODO"] and "kmp_blocktime" in notes[0].message


# -- the rest of the field table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "model: {name: m, inputs: 'a, b', outputs: [c]}",
            {"inputs": ["a", "b"], "outputs": ["c"]},
        ),
        (
            "tuning: {strategy: {name: sigopt, sigopt_experiment_name: e, accuracy_weight: 0.8, latency_weight: 0.2}}",
            {
                "tuning_criterion": Call(
                    "TuningCriterion",
                    {
                        "strategy": "sigopt",
                        "strategy_kwargs": {
                            "sigopt_experiment_name": "e",
                            "accuracy_weight": 0.8,
                            "latency_weight": 0.2,
                        },
                    },
                )
            },
        ),
        (
            "tuning: {strategy: {name: hawq_v2, hawq_v2_loss: my_loss, confidence_batches: 2}}",
            {
                "tuning_criterion": Call(
                    "TuningCriterion",
                    {
                        "strategy": "hawq_v2",
                        "strategy_kwargs": {"confidence_batches": 2, "hawq_v2_loss": "my_loss"},
                    },
                )
            },
        ),
        (
            "tuning: {multi_objectives: {objective: 'accuracy, modelsize', weight: '0.7, 0.3', higher_is_better: 'True, False'}}",
            {
                "tuning_criterion": Call(
                    "TuningCriterion",
                    {
                        "objective": {
                            "objective": ["accuracy", "modelsize"],
                            "weight": [0.7, 0.3],
                            "higher_is_better": [True, False],
                        }
                    },
                )
            },
        ),
        (
            "quantization: {optype_wise: {Linear: {weight: {dtype: fp32}}}}",
            {"op_type_dict": {"Linear": {"weight": {"dtype": ["fp32"]}}}},
        ),
        (
            "quantization: {recipes: {first_conv_or_matmul_quantization: false, last_conv_or_matmul_quantization: false, pre_post_process_quantization: true}}",
            {
                "recipes": {
                    "first_conv_or_matmul_quantization": False,
                    "last_conv_or_matmul_quantization": False,
                    "pre_post_process_quantization": True,
                }
            },
        ),
    ],
)
def test_more_quantization_and_tuning_fields(tmp_path, yaml_text, expected):
    q, notes, _ = quant(tmp_path, yaml_text)
    assert {k: q.kwargs[k] for k in expected} == expected
    assert [n for n in notes if n.kind == "TODO"] == []


def test_multi_metrics_become_eval_metric(tmp_path):
    doc = load(
        tmp_path,
        "evaluation:\n  accuracy:\n    multi_metrics: {topk: 1, MSE: {}, weight: '0.5, 0.5', higher_is_better: [true, false]}\n",
    )
    ev = yaml_map.evaluation(doc, yaml_map.Notes(), used=True)
    assert ev.metric == {
        "topk": 1,
        "MSE": {},
        "weight": [0.5, 0.5],
        "higher_is_better": [True, False],
    }


def test_legacy_names_excluded_names_and_the_layer_cap(tmp_path):
    p, notes = pruning(
        tmp_path,
        "pruning:\n  approach:\n    weight_compression:\n"
        "      max_sparsity_ratio_per_layer: 0.9\n      excluded_names: ['head.weight']\n"
        "      extra_excluded_names: ['emb.weight']\n      prune_domain: global\n"
        "      names: ['fc.weight']\n      update_frequency: 2\n",
    )
    assert render(
        {k: p.kwargs[k] for k in ("op_names", "excluded_op_names", "max_sparsity_ratio_per_op")}
    ) == render(
        {
            "op_names": [yaml_map.Regex("^fc$")],
            "excluded_op_names": [yaml_map.Regex("^head$"), yaml_map.Regex("^emb$")],
            "max_sparsity_ratio_per_op": 0.9,
        }
    )
    assert render(p.kwargs["pruning_frequency"]) == "2 * spe"
    assert p.kwargs["pruning_scope"] == "local"  # 1.x legacy thresholds are per layer
    assert [n.kind for n in notes] == ["INFO"] and "prune_domain" in notes[0].keys


@pytest.mark.parametrize(
    ("yaml_text", "todo"),
    [
        ("evaluation: {accuracy: {iteration: 10}}", "evaluation.accuracy.iteration"),
        ("evaluation: {accuracy: {configs: {num_of_instance: 2}}}", "evaluation.accuracy.configs"),
        (
            "evaluation: {accuracy: {postprocess: {transform: {X: {}}}}}",
            "evaluation.accuracy.postprocess",
        ),
    ],
)
def test_evaluation_fields_without_a_2x_home(tmp_path, yaml_text, todo):
    notes = yaml_map.Notes()
    yaml_map.evaluation(load(tmp_path, yaml_text), notes, used=True)
    assert [n.kind for n in notes] == ["TODO"] and todo in notes[0].message


def test_benchmark_postprocess_and_mixed_precision_op_wise_have_no_2x_home(tmp_path):
    notes = yaml_map.Notes()
    yaml_map.benchmark(
        load(tmp_path, "evaluation: {performance: {postprocess: {transform: {X: {}}}}}"),
        notes,
        "performance",
    )
    yaml_map.mixed_precision(
        load(tmp_path, "mixed_precision: {precisions: bf16, op_wise: {fc: {}}}"), notes
    )
    assert [(n.kind, yaml_map.dotted(n.keys)) for n in notes] == [
        ("TODO", "evaluation.performance.postprocess"),
        ("TODO", "mixed_precision.op_wise"),
    ]


def test_a_plain_loss_is_not_a_distillation_criterion(tmp_path):
    doc = load(tmp_path, "distillation:\n  train:\n    criterion:\n      CrossEntropyLoss: {}\n")
    notes = yaml_map.Notes()
    d = yaml_map.distillation(doc, notes, criterion_in_code=False)
    assert d.criterion is None
    assert [n.kind for n in notes] == ["TODO"] and "not a distillation loss" in notes[0].message
