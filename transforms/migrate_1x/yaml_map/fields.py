"""The field table (every 1.x key, its 2.x home or None, and why) and the notes
about fields that have no 2.x home."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .document import _MISSING, Keys, YamlDoc, dotted

# --------------------------------------------------------------------------------------
# the field table: every 1.x key, its 2.x home (or None) and why

Home = str | None


@dataclass(frozen=True)
class FieldRule:
    home: Home
    note: str = ""


_NO_TF = "TensorFlow/ONNX only; PyTorch has no such setting"
_LOOP = "the 1.x built-in training loop; 2.x has none, the training loop is code"
_EVAL = "2.x evaluates through eval_func or eval_dataloader + eval_metric"

FIELDS: dict[str, FieldRule] = {
    "version": FieldRule(None, "a schema version, nothing to carry"),
    "model.name": FieldRule(
        "model_name= (QuantizationAwareTrainingConfig, MixedPrecisionConfig, BenchmarkConfig)",
        "PostTrainingQuantConfig, WeightPruningConfig and DistillationConfig have no model name",
    ),
    "model.framework": FieldRule(
        "backend= (pytorch_ipex -> 'ipex'; pytorch/pytorch_fx -> 'default'), quant_format= for onnxrt_*"
    ),
    "model.inputs": FieldRule("inputs="),
    "model.outputs": FieldRule("outputs="),
    "device": FieldRule("device="),
    "use_bf16": FieldRule("excluded_precisions=['bf16'] when false"),
    "optimization_level": FieldRule("quant_level="),
    "quantization.approach": FieldRule(
        "PostTrainingQuantConfig(approach=) / QuantizationAwareTrainingConfig"
    ),
    "quantization.calibration.sampling_size": FieldRule("calibration_sampling_size="),
    "quantization.calibration.dataloader": FieldRule(
        None, "a dataloader described in yaml; 2.x takes calib_dataloader= built in code"
    ),
    "quantization.train": FieldRule(None, _LOOP),
    "quantization.recipes.first_conv_or_matmul_quantization": FieldRule("recipes="),
    "quantization.recipes.last_conv_or_matmul_quantization": FieldRule("recipes="),
    "quantization.recipes.pre_post_process_quantization": FieldRule("recipes="),
    "quantization.recipes.fast_bias_correction": FieldRule("recipes="),
    "quantization.recipes.weight_correction": FieldRule("recipes="),
    "quantization.recipes.scale_propagation_max_pooling": FieldRule(None, _NO_TF),
    "quantization.recipes.scale_propagation_concat": FieldRule(None, _NO_TF),
    "quantization.advance.bias_correction": FieldRule(
        None,
        "2.x has no bias_correction setting (recipes['weight_correction'] is a different algorithm)",
    ),
    "quantization.model_wise.*": FieldRule("op_type_dict={'.*': ...}"),
    "quantization.model_wise.weight.bit": FieldRule(
        None, "2.x has no bit-width setting in op dicts"
    ),
    "quantization.model_wise.activation.compute_dtype": FieldRule(
        None, "2.x has no compute_dtype setting"
    ),
    "quantization.optype_wise": FieldRule("op_type_dict="),
    "quantization.optype_wise.*": FieldRule("op_type_dict="),
    "quantization.op_wise": FieldRule("op_name_dict="),
    "quantization.op_wise.*": FieldRule("op_name_dict="),
    "quantization.op_wise.default_qconfig": FieldRule(None, "2.x has no default_qconfig entry"),
    "quantization.optimization_level": FieldRule("quant_level="),
    "tuning.strategy.name": FieldRule(
        "tuning_criterion=TuningCriterion(strategy=) and quant_level=1"
    ),
    "tuning.strategy.sigopt_api_token": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.sigopt_project_id": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.sigopt_experiment_name": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.accuracy_weight": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.latency_weight": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.confidence_batches": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.strategy.hawq_v2_loss": FieldRule("TuningCriterion(strategy_kwargs=)"),
    "tuning.accuracy_criterion.relative": FieldRule(
        "accuracy_criterion=AccuracyCriterion(criterion='relative', tolerable_loss=)"
    ),
    "tuning.accuracy_criterion.absolute": FieldRule(
        "accuracy_criterion=AccuracyCriterion(criterion='absolute', tolerable_loss=)"
    ),
    "tuning.accuracy_criterion.higher_is_better": FieldRule("AccuracyCriterion(higher_is_better=)"),
    "tuning.objective": FieldRule("TuningCriterion(objective=)"),
    "tuning.multi_objectives": FieldRule("TuningCriterion(objective={...})"),
    "tuning.exit_policy.timeout": FieldRule("TuningCriterion(timeout=)"),
    "tuning.exit_policy.max_trials": FieldRule("TuningCriterion(max_trials=)"),
    "tuning.exit_policy.performance_only": FieldRule(
        "fit(...) without eval_func / eval_dataloader"
    ),
    "tuning.random_seed": FieldRule("set_random_seed()"),
    "tuning.tensorboard": FieldRule("set_tensorboard()"),
    "tuning.workspace.path": FieldRule("set_workspace()"),
    "tuning.workspace.resume": FieldRule("set_resume_from()"),
    "tuning.diagnosis": FieldRule(
        "PostTrainingQuantConfig(diagnosis=True) (true, or diagnosis_after_tuning)"
    ),
    "tuning.diagnosis.diagnosis_after_tuning": FieldRule("PostTrainingQuantConfig(diagnosis=True)"),
    "tuning.diagnosis.*": FieldRule(
        None,
        "2.x diagnosis is on/off only; op_list, iteration_list, inspect_type and save settings have no home",
    ),
    "evaluation.accuracy.metric": FieldRule("eval_metric= (with eval_dataloader=)"),
    "evaluation.accuracy.multi_metrics": FieldRule(
        "eval_metric={..., 'weight': [...], 'higher_is_better': [...]}"
    ),
    "evaluation.accuracy.dataloader": FieldRule(
        None, "a dataloader described in yaml; 2.x takes eval_dataloader= built in code"
    ),
    "evaluation.accuracy.postprocess": FieldRule(
        None, "2.x has no postprocess; fold it into eval_func"
    ),
    "evaluation.accuracy.iteration": FieldRule(
        None, "2.x evaluates the whole eval_dataloader; limit it in eval_func"
    ),
    "evaluation.accuracy.configs": FieldRule(
        None, "2.x runs accuracy evaluation in one process; no instance settings"
    ),
    "evaluation.performance.warmup": FieldRule("BenchmarkConfig(warmup=)"),
    "evaluation.performance.iteration": FieldRule("BenchmarkConfig(iteration=)"),
    "evaluation.performance.configs.cores_per_instance": FieldRule(
        "BenchmarkConfig(cores_per_instance=)"
    ),
    "evaluation.performance.configs.num_of_instance": FieldRule(
        "BenchmarkConfig(num_of_instance=)"
    ),
    "evaluation.performance.configs.inter_num_of_threads": FieldRule(
        "BenchmarkConfig(inter_num_of_threads=)"
    ),
    "evaluation.performance.configs.intra_num_of_threads": FieldRule(
        "BenchmarkConfig(intra_num_of_threads=)"
    ),
    "evaluation.performance.configs.kmp_blocktime": FieldRule(
        None, "BenchmarkConfig has no KMP settings; export KMP_BLOCKTIME yourself"
    ),
    "evaluation.performance.configs.kmp_affinity": FieldRule(
        None, "BenchmarkConfig has no KMP settings; export KMP_AFFINITY yourself"
    ),
    "evaluation.performance.dataloader": FieldRule(
        None, "a dataloader described in yaml; 2.x takes b_dataloader= built in code"
    ),
    "evaluation.performance.postprocess": FieldRule(None, "2.x benchmark has no postprocess"),
    "pruning.train": FieldRule(None, _LOOP),
    "pruning.approach.weight_compression.target_sparsity": FieldRule("target_sparsity="),
    "pruning.approach.weight_compression.initial_sparsity": FieldRule(
        None,
        "2.x schedules start from the current sparsity (lock_init_sparsity keeps existing zeros)",
    ),
    "pruning.approach.weight_compression.max_sparsity_ratio_per_layer": FieldRule(
        "max_sparsity_ratio_per_op="
    ),
    "pruning.approach.weight_compression.prune_type": FieldRule("pruning_type="),
    "pruning.approach.weight_compression.start_epoch": FieldRule(
        "start_step= (epochs x steps per epoch)"
    ),
    "pruning.approach.weight_compression.end_epoch": FieldRule(
        "end_step= (epochs x steps per epoch)"
    ),
    "pruning.approach.weight_compression.update_frequency": FieldRule(
        "pruning_frequency= (epochs x steps per epoch)"
    ),
    "pruning.approach.weight_compression.start_step": FieldRule("start_step="),
    "pruning.approach.weight_compression.end_step": FieldRule("end_step="),
    "pruning.approach.weight_compression.update_frequency_on_step": FieldRule("pruning_frequency="),
    "pruning.approach.weight_compression.excluded_names": FieldRule("excluded_op_names="),
    "pruning.approach.weight_compression.extra_excluded_names": FieldRule("excluded_op_names="),
    "pruning.approach.weight_compression.prune_domain": FieldRule("pruning_scope="),
    "pruning.approach.weight_compression.names": FieldRule("op_names= (module names)"),
    "pruning.approach.weight_compression.prune_layer_type": FieldRule("pruning_op_types="),
    "pruning.approach.weight_compression.sparsity_decay_type": FieldRule("sparsity_decay_type="),
    "pruning.approach.weight_compression.pattern": FieldRule("pattern="),
    "pruning.approach.weight_compression.pruners[].method": FieldRule("pruning_scope='local'"),
    "pruning.approach.weight_compression.pruners[].parameters": FieldRule(
        "reg_type/parameters (group_lasso)"
    ),
    "pruning.approach.weight_compression.pruners[].*": FieldRule(
        "pruning_configs=[{...}] (same keys as above, 2.x names)"
    ),
    "pruning.approach.weight_compression_pytorch.*": FieldRule(
        "WeightPruningConfig (same keys as weight_compression, step based)"
    ),
    "distillation.train.criterion.KnowledgeDistillationLoss": FieldRule(
        "KnowledgeDistillationLossConfig(temperature=, loss_types=, loss_weights=)"
    ),
    "distillation.train.criterion.IntermediateLayersKnowledgeDistillationLoss": FieldRule(
        "IntermediateLayersKnowledgeDistillationLossConfig(layer_mappings= remapped, ...)"
    ),
    "distillation.train.criterion.SelfKnowledgeDistillationLoss": FieldRule(
        "SelfKnowledgeDistillationLossConfig(...)"
    ),
    "distillation.train.criterion.CrossEntropyLoss": FieldRule(
        None, "not a distillation loss; 2.x distillation needs a *DistillationLossConfig"
    ),
    "distillation.train.criterion.SparseCategoricalCrossentropy": FieldRule(
        None, "not a distillation loss; 2.x distillation needs a *DistillationLossConfig"
    ),
    "distillation.train.optimizer": FieldRule(
        "DistillationConfig(optimizer=) (stored, not used by 2.x)"
    ),
    "distillation.train.*": FieldRule(None, _LOOP),
    "train": FieldRule(None, _LOOP),
    "mixed_precision.precisions": FieldRule("MixedPrecisionConfig(precisions=)"),
    "mixed_precision.op_wise": FieldRule(None, "1.x mixed-precision op_wise is TensorFlow-only"),
    "graph_optimization": FieldRule(
        None, "GraphOptimization is TensorFlow-only and has no 2.x API"
    ),
    "model_conversion": FieldRule(None, "ModelConversion (TensorFlow QAT) has no 2.x equivalent"),
    "nas": FieldRule(None, "1.x NAS is not part of the 2.x compression API"),
    "auto_distillation": FieldRule(
        None, "1.x auto-distillation is not part of the 2.x compression API"
    ),
}


def rule_for(keys: Keys) -> FieldRule | None:
    """The FIELDS row for a key path (most specific pattern first)."""
    parts: list[str] = []
    for k in keys:
        if isinstance(k, int):
            parts[-1] += "[]"
        else:
            parts.append(k)
    for n in range(len(parts), 0, -1):
        exact = ".".join(parts[:n])
        if exact in FIELDS:
            return FIELDS[exact]
        star = ".".join(parts[: n - 1] + ["*"]) if n > 1 else None
        if star and star in FIELDS:
            return FIELDS[star]
    return None


@dataclass
class Note:
    kind: Literal["TODO", "INFO"]
    keys: Keys
    message: str


class Notes(list[Note]):
    def todo(self, keys: Keys, message: str) -> None:
        self.append(Note("TODO", keys, message))

    def info(self, keys: Keys, message: str) -> None:
        self.append(Note("INFO", keys, message))

    def no_home(self, doc: YamlDoc, keys: Keys, value: Any = _MISSING) -> None:
        """TODO for a field that has no 2.x home (and is marked consumed)."""
        if value is _MISSING:
            value = doc.get(*keys)
        else:
            doc.consumed.add(keys)
        rule = rule_for(keys)
        why = rule.note if rule and rule.note else "no 2.x equivalent"
        self.todo(
            keys, f"`{dotted(keys)}: {short(value)}` has no 2.x home ({why}); not carried over"
        )


def short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
