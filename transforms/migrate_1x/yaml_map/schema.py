"""The v1.14.2 conf.yaml schema (keys and types) and the value helpers it uses."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------
# schema (v1.14.2 conf/config.py)


def as_list(value: Any) -> list[Any]:
    """1.x accepted 'a, b' / 'a b' strings and scalars where lists were meant."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        parts = [p.strip() for p in re.split(r"[,\s]+", value) if p.strip()]
        return parts
    return [value]


def percent(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return float(text)
    return float(value)


def ints(value: Any) -> list[int]:
    """`300`, `[100, 500]` or `"100, 500"` as a list of ints."""
    return [int(v) for v in as_list(value)]


def floats(value: Any) -> list[float]:
    """`0.5`, `[0.5, 0.5]` or `"0.5, 0.5"` as a list of floats."""
    return [float(v) for v in as_list(value)]


@dataclass(frozen=True)
class Scalar:
    types: tuple[type, ...]
    label: str
    choices: tuple[object, ...] = ()


@dataclass(frozen=True)
class Union:
    options: tuple[object, ...]
    label: str


@dataclass(frozen=True)
class ListOf:
    item: object


@dataclass(frozen=True)
class MapOf:
    value: object


@dataclass(frozen=True)
class Text:
    """A string the mapping functions parse (`parse` raises ValueError when it cannot)."""

    parse: Callable[[str], object]
    label: str


INT = Scalar((int,), "an integer")
FLOAT = Scalar((int, float), "a number")
STR = Scalar((str,), "a string")
BOOL = Scalar((bool,), "true or false")
ANY = Scalar((object,), "anything")


def one_of(*choices: object) -> Scalar:
    types = tuple({type(c) for c in choices})
    return Scalar(types, "one of " + ", ".join(map(str, choices)), choices)


STR_OR_LIST = Union((STR, ListOf(STR)), "a string or a list of strings")
PERCENT = Union(
    (FLOAT, Text(percent, "a percentage string")), "a number or a percentage string ('1%', '0.01')"
)
NUM_OR_LIST = Union((FLOAT, ListOf(FLOAT)), "a number or a list of numbers")
# 1.x read multi-objective / multi-metric weights with `input_to_list_float`
WEIGHTS = Union(
    (FLOAT, Text(floats, "a comma string of numbers"), ListOf(FLOAT)),
    "a number, a list of numbers or a comma string of them ('0.7, 0.3')",
)

_OP = {
    "granularity": STR_OR_LIST,
    "scheme": STR_OR_LIST,
    "dtype": STR_OR_LIST,
    "algorithm": STR_OR_LIST,
    "bit": NUM_OR_LIST,
    "compute_dtype": STR_OR_LIST,
}
OPS = {"weight": _OP, "activation": _OP}
DATALOADER = {
    "last_batch": one_of("rollover", "discard"),
    "batch_size": INT,
    "dataset": MapOf(ANY),
    "filter": MapOf(ANY),
    "transform": MapOf(ANY),
    "shuffle": BOOL,
    "distributed": BOOL,
}
CONFIGS = {
    "cores_per_instance": INT,
    "num_of_instance": INT,
    "inter_num_of_threads": INT,
    "intra_num_of_threads": INT,
    "kmp_blocktime": INT,
    "kmp_affinity": STR,
}
_ADAM = {
    "learning_rate": FLOAT,
    "beta_1": FLOAT,
    "beta_2": FLOAT,
    "epsilon": FLOAT,
    "amsgrad": BOOL,
    "weight_decay": FLOAT,
}
OPTIMIZER = {
    "SGD": {"learning_rate": FLOAT, "momentum": FLOAT, "nesterov": BOOL, "weight_decay": FLOAT},
    "Adam": _ADAM,
    "AdamW": _ADAM,
}
CRITERION = {
    "CrossEntropyLoss": {"reduction": STR, "from_logits": BOOL},
    "SparseCategoricalCrossentropy": {"reduction": STR, "from_logits": BOOL},
    "KnowledgeDistillationLoss": {
        "temperature": FLOAT,
        "loss_types": ListOf(one_of("CE", "KL", "MSE")),
        "loss_weights": ListOf(FLOAT),
    },
    "IntermediateLayersKnowledgeDistillationLoss": {
        "layer_mappings": ListOf(ListOf(ANY)),
        "loss_types": ListOf(one_of("MSE", "KL", "L1")),
        "loss_weights": ListOf(FLOAT),
        "add_origin_loss": BOOL,
    },
    "SelfKnowledgeDistillationLoss": {
        "layer_mappings": ListOf(ANY),
        "loss_types": ListOf(one_of("L2", "CE", "KL")),
        "loss_weights": ListOf(FLOAT),
        "add_origin_loss": BOOL,
        "temperature": FLOAT,
    },
}
TRAIN = {
    "criterion": CRITERION,
    "optimizer": OPTIMIZER,
    "dataloader": DATALOADER,
    "epoch": INT,
    "start_epoch": INT,
    "end_epoch": INT,
    "iteration": INT,
    "frequency": INT,
    "execution_mode": one_of("eager", "graph"),
    "postprocess": {"transform": MapOf(ANY)},
    "hostfile": STR,
}
_PRUNE_COMMON = {
    "initial_sparsity": FLOAT,
    "target_sparsity": FLOAT,
    "prune_type": STR,
    "start_epoch": INT,
    "end_epoch": INT,
    "start_step": INT,
    "end_step": INT,
    "update_frequency": FLOAT,
    "update_frequency_on_step": INT,
    "prune_domain": STR,
    "names": ListOf(STR),
    "extra_excluded_names": ListOf(STR),
    "sparsity_decay_type": STR,
    "pattern": STR,
}
PRUNER = {**_PRUNE_COMMON, "method": one_of("per_tensor", "per_channel"), "parameters": MapOf(ANY)}
WEIGHT_COMPRESSION = {
    **_PRUNE_COMMON,
    "max_sparsity_ratio_per_layer": FLOAT,
    "excluded_names": ListOf(STR),
    "prune_layer_type": ListOf(STR),
    "pruners": ListOf(PRUNER),
}
METRICS = {
    name: ANY
    for name in (
        "topk mAP COCOmAP COCOmAPv2 VOCmAP SquadF1 MSE RMSE MAE Accuracy Loss BLEU F1 mIOU GLUE ROC"
    ).split()
}
FRAMEWORKS = (
    "pytorch",
    "pytorch_fx",
    "pytorch_ipex",
    "tensorflow",
    "tensorflow_itex",
    "keras",
    "onnxrt_integerops",
    "onnxrt_qlinearops",
    "onnxrt_qdq",
    "onnxrt_qoperator",
    "mxnet",
    "engine",
    "NA",
)
OBJECTIVES = ("performance", "accuracy", "modelsize", "footprint")
APPROACHES = (
    "post_training_static_quant",
    "post_training_dynamic_quant",
    "post_training_auto_quant",
    "quant_aware_training",
)
SCHEMA: dict[str, object] = {
    "version": Union((FLOAT, STR), "a version number"),
    "model": {
        "name": STR,
        "framework": one_of(*FRAMEWORKS),
        "inputs": STR_OR_LIST,
        "outputs": STR_OR_LIST,
    },
    "device": one_of("cpu", "gpu"),
    "use_bf16": BOOL,
    "optimization_level": one_of(0, 1),
    "quantization": {
        "approach": one_of(*APPROACHES),
        "calibration": {
            "sampling_size": Union(
                (INT, Text(ints, "a comma string of integers"), ListOf(INT)),
                "an integer, a list of integers or a comma string of them ('100, 500')",
            ),
            "dataloader": DATALOADER,
        },
        "train": TRAIN,
        "recipes": {
            "scale_propagation_max_pooling": BOOL,
            "scale_propagation_concat": BOOL,
            "first_conv_or_matmul_quantization": BOOL,
            "last_conv_or_matmul_quantization": BOOL,
            "pre_post_process_quantization": BOOL,
            "fast_bias_correction": BOOL,
            "weight_correction": BOOL,
        },
        "advance": {"bias_correction": one_of("weight_empirical")},
        "model_wise": OPS,
        "optype_wise": MapOf(OPS),
        "op_wise": MapOf(OPS),
        "optimization_level": one_of(0, 1),
    },
    "tuning": {
        "strategy": {
            "name": STR,
            "sigopt_api_token": STR,
            "sigopt_project_id": STR,
            "sigopt_experiment_name": STR,
            "accuracy_weight": FLOAT,
            "latency_weight": FLOAT,
            "confidence_batches": INT,
            "hawq_v2_loss": ANY,
        },
        "accuracy_criterion": {
            "relative": PERCENT,
            "absolute": PERCENT,
            "higher_is_better": BOOL,
        },
        "objective": one_of(*OBJECTIVES),
        "multi_objectives": {
            "objective": STR_OR_LIST,
            "weight": WEIGHTS,
            "higher_is_better": Union((BOOL, STR, ListOf(BOOL)), "booleans"),
        },
        "exit_policy": {"timeout": INT, "max_trials": INT, "performance_only": BOOL},
        "random_seed": INT,
        "tensorboard": BOOL,
        "workspace": {"path": STR, "resume": STR},
        "diagnosis": Union(
            (
                BOOL,
                {
                    "diagnosis_after_tuning": BOOL,
                    "op_list": STR_OR_LIST,
                    "iteration_list": Union((INT, ListOf(INT)), "integers"),
                    "inspect_type": one_of("all", "activation", "weight"),
                    "save_to_disk": BOOL,
                    "save_path": STR,
                },
            ),
            "true/false or a diagnosis mapping",
        ),
    },
    "evaluation": {
        "accuracy": {
            "metric": METRICS,
            "multi_metrics": {
                **METRICS,
                "weight": WEIGHTS,
                "higher_is_better": Union((BOOL, STR, ListOf(BOOL)), "booleans"),
            },
            "configs": CONFIGS,
            "iteration": INT,
            "dataloader": DATALOADER,
            "postprocess": {"transform": MapOf(ANY)},
        },
        "performance": {
            "warmup": INT,
            "iteration": INT,
            "configs": CONFIGS,
            "dataloader": DATALOADER,
            "postprocess": {"transform": MapOf(ANY)},
        },
    },
    "pruning": {
        "train": TRAIN,
        "approach": {
            "weight_compression": WEIGHT_COMPRESSION,
            "weight_compression_pytorch": WEIGHT_COMPRESSION,
        },
    },
    "distillation": {"train": TRAIN},
    "mixed_precision": {"precisions": STR_OR_LIST, "op_wise": MapOf(ANY)},
    "graph_optimization": {"precisions": STR_OR_LIST, "op_wise": MapOf(ANY)},
    "model_conversion": {"source": STR, "destination": STR},
    "train": TRAIN,
    "nas": MapOf(ANY),
    "auto_distillation": MapOf(ANY),
}
