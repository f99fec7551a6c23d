"""The 1.x conf.yaml: safe loading, schema validation, and the field tables to 2.x.

* Loading uses a `yaml.SafeLoader` subclass that knows one extra tag, `!Pruner`
  (1.x pruning yamls use it); it builds a plain dict. Anything else that is not
  plain YAML (`!!python/object`, `!!python/name`, unknown tags) is refused with a
  `ConfigError` naming the file and line: nothing in the yaml is ever executed.
* `validate` checks the v1.14.2 schema (keys and types; `FIELDS` below lists every
  key with its 2.x home), so a typo or a wrong type is an error, never a silent default.
* The mapping functions turn sections into 2.x keyword arguments. Every field they
  read is marked consumed; fields without a 2.x home become TODO notes; what no
  component of the script consumed is reported by the engine as INFO.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from neural_coder.transforms.errors import ConfigError

from .codegen import Call, Code, Regex

Keys = tuple[str | int, ...]

# --------------------------------------------------------------------------------------
# loading


class _PrunerMap(dict):
    """A mapping written with the 1.x `!Pruner` tag."""


class _Loader(yaml.SafeLoader):
    """SafeLoader plus the `!Pruner` tag; nothing here constructs Python objects."""


def _construct_pruner(loader: _Loader, node: yaml.Node) -> _PrunerMap:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!Pruner must tag a mapping", node.start_mark
        )
    return _PrunerMap(loader.construct_mapping(node, deep=True))


_Loader.add_constructor("!Pruner", _construct_pruner)


@dataclass
class YamlDoc:
    """One loaded conf.yaml, with the line of every key and what has been read."""

    path: Path
    data: dict[str, Any]
    lines: dict[Keys, int]
    consumed: set[Keys] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.path.name

    def line(self, keys: Keys) -> int | None:
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None

    def has(self, *keys: str | int) -> bool:
        return self._lookup(keys) is not _MISSING

    def get(self, *keys: str | int, default: Any = None) -> Any:
        """The value at `keys` (marked consumed), or `default`."""
        value = self._lookup(keys)
        if value is _MISSING:
            return default
        self.consumed.add(tuple(keys))
        return value

    def _lookup(self, keys: tuple[str | int, ...]) -> Any:
        node: Any = self.data
        for key in keys:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                return _MISSING
        # 1.x read every empty value (`SquadF1:`) as {} (validate() already refused
        # an empty value where a scalar belongs)
        return {} if node is None and keys else node

    def leaves(self) -> Iterator[tuple[Keys, Any]]:
        yield from _leaves(self.data, ())

    def unconsumed(self) -> list[tuple[Keys, Any]]:
        out = []
        for keys, value in self.leaves():
            if not any(keys[: len(c)] == c for c in self.consumed):
                out.append((keys, value))
        return out


class _Missing:
    pass


_MISSING = _Missing()


def _leaves(value: Any, keys: Keys) -> Iterator[tuple[Keys, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*keys, k))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            yield from _leaves(v, (*keys, i))
    elif keys:
        yield keys, value


def dotted(keys: Keys) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def load(path: Path) -> YamlDoc:
    """Load and validate a 1.x conf.yaml. Missing file, bad YAML, tags, schema: ConfigError."""
    if not path.is_file():
        raise ConfigError(
            f"the 1.x configuration {path} does not exist",
            path=path,
            hint="the yaml path in the script is read relative to the script's folder",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the yaml as UTF-8", path=path
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, path)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        tag = getattr(exc, "problem", "") or ""
        raise ConfigError(
            f"refused to load: {tag}; a 1.x conf.yaml holds plain YAML only (and !Pruner), "
            "it is never executed",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a 1.x conf.yaml must be a mapping at the top level", path=path, line=1)
    lines: dict[Keys, int] = {}
    if node is not None:
        _LineRecorder(path, lines).walk(node, ())
    doc = YamlDoc(path=path, data=data, lines=lines)
    validate(doc)
    return doc


# A 1.x conf.yaml has tens of values; aliases (`*name`) could make a few lines expand
# without end (a recursive alias, or aliases of aliases), so the walk is bounded.
_MAX_NODES = 100_000


class _LineRecorder:
    """The line of every key, walking the composed YAML nodes. Refuses a recursive
    alias, a document that expands past `_MAX_NODES` values, and a key written twice in
    one mapping (YAML keeps the last one and drops the other silently)."""

    def __init__(self, path: Path, lines: dict[Keys, int]) -> None:
        self.path = path
        self.lines = lines
        self.budget = _MAX_NODES
        self.open: set[int] = set()  # the collection nodes on the current path

    def walk(self, node: yaml.Node, keys: Keys) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise ConfigError(
                f"the yaml expands to more than {_MAX_NODES} values (aliases of aliases?); "
                "a 1.x conf.yaml is small: write the values out",
                path=self.path,
                line=node.start_mark.line + 1,
            )
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return
        if id(node) in self.open:
            raise ConfigError(
                f"`{dotted(keys)}` is a recursive alias (it contains itself); write the values out",
                path=self.path,
                line=node.start_mark.line + 1,
            )
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*keys, k.value)
                self.lines[key] = k.start_mark.line + 1
                self.walk(v, key)
        else:
            for i, item in enumerate(node.value):
                key = (*keys, i)
                self.lines[key] = item.start_mark.line + 1
                self.walk(item, key)
        self.open.discard(id(node))


def _refuse_duplicate_keys(root: yaml.Node, path: Path) -> None:
    """A key written twice in one mapping: YAML keeps the last value and drops the
    other silently. Checked on the composed nodes, before `<<: *name` merges (whose
    keys may be overridden on purpose) are flattened in."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            written: dict[tuple[str, str], int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    if (k.tag, k.value) in written:
                        raise ConfigError(
                            f"`{k.value}` is written twice in one mapping (lines "
                            f"{written[(k.tag, k.value)]} and {line}); YAML would keep the last "
                            "one and drop the other silently: remove one",
                            path=path,
                            line=line,
                        )
                    written[(k.tag, k.value)] = line
                todo += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


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


def validate(doc: YamlDoc) -> None:
    """Raise ConfigError (file:line, key, what is allowed) for unknown keys and wrong types."""
    problem = _check(doc.data, SCHEMA, ())
    if problem is None:
        return
    keys, message = problem
    raise ConfigError(
        f"`{dotted(keys) or '<top level>'}`: {message}", path=doc.path, line=doc.line(keys)
    )


def _check(value: Any, spec: object, keys: Keys) -> tuple[Keys, str] | None:
    if isinstance(spec, dict):
        if value is None:  # `key:` with nothing under it reads as {} in 1.x
            return None
        if not isinstance(value, dict):
            return keys, f"expected a mapping, got {_type_name(value)}"
        for k, v in value.items():
            if k not in spec:
                allowed = ", ".join(str(s) for s in spec)
                return (*keys, k), f"unknown key; allowed here: {allowed}"
            problem = _check(v, spec[k], (*keys, k))
            if problem:
                return problem
        return None
    if isinstance(spec, MapOf):
        if value is None:
            return None
        if not isinstance(value, dict):
            return keys, f"expected a mapping, got {_type_name(value)}"
        for k, v in value.items():
            problem = _check(v, spec.value, (*keys, k))
            if problem:
                return problem
        return None
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return keys, f"expected a list, got {_type_name(value)}"
        for i, item in enumerate(value):
            problem = _check(item, spec.item, (*keys, i))
            if problem:
                return problem
        return None
    if isinstance(spec, Union):
        problems = [_check(value, option, keys) for option in spec.options]
        if all(problems):
            deepest = max(problems, key=lambda p: len(p[0]) if p else 0)
            if deepest and len(deepest[0]) > len(keys):
                return deepest
            shown = "" if isinstance(value, dict | list) else f" {value!r}"
            return keys, f"expected {spec.label}, got {_type_name(value)}{shown}"
        return None
    if isinstance(spec, Text):
        if not isinstance(value, str):
            return keys, f"expected {spec.label}, got {_type_name(value)}"
        try:
            spec.parse(value)
        except ValueError:
            return keys, f"expected {spec.label}, got {value!r}"
        return None
    assert isinstance(spec, Scalar)
    if spec is ANY:
        return None
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        return keys, f"expected {spec.label}, got {_type_name(value)} {value!r}"
    if spec.choices and value not in spec.choices:
        return keys, f"{value!r} is not allowed; expected {spec.label}"
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


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


# --------------------------------------------------------------------------------------
# mapping sections to 2.x keyword arguments


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


def framework_kwargs(
    doc: YamlDoc, notes: Notes, *, model_name: bool, backend: bool = True, fx: bool = False
) -> dict[str, object]:
    """model.*, device: the kwargs the 2.x config classes share.

    `backend=False` (WeightPruningConfig, DistillationConfig): those classes take no
    device / backend; the model's own device and class decide, so the fields are read
    (reported when they say something) and not carried.
    """
    out: dict[str, object] = {}
    framework = doc.get("model", "framework")
    if not backend:
        if doc.has("device"):
            device = doc.get("device")
            if device != "cpu":
                notes.info(
                    ("device",),
                    f"`device: {device}`: 2.x pruning and distillation run where the model is; move the model to the device in code",
                )
        if framework not in (None, "pytorch", "pytorch_fx", "NA"):
            notes.info(
                ("model", "framework"),
                f"`model.framework: {framework}` does not change 2.x pruning or distillation; not carried over",
            )
        for key in ("inputs", "outputs"):
            doc.get("model", key)
        if doc.has("model", "name"):
            doc.get("model", "name")
        doc.get("version")
        return out
    if doc.has("device"):
        out["device"] = doc.get("device")
    if framework == "pytorch":
        if fx:
            notes.info(
                ("model", "framework"),
                "1.x `pytorch` meant eager mode; the 2.x default backend traces with FX and falls back to eager where tracing fails",
            )
    elif framework == "pytorch_ipex":
        out["backend"] = "ipex"
    elif framework == "onnxrt_qlinearops" or framework == "onnxrt_qoperator":
        out["quant_format"] = "QOperator"
    elif framework == "onnxrt_qdq":
        out["quant_format"] = "QDQ"
    elif framework not in (None, "pytorch_fx", "NA", "onnxrt_integerops"):
        notes.todo(
            ("model", "framework"),
            f"`model.framework: {framework}` is not a PyTorch framework; this tool migrates PyTorch scripts, check the backend by hand",
        )
    for key in ("inputs", "outputs"):
        if doc.has("model", key):
            value = as_list(doc.get("model", key))
            if value:
                out[key] = value
    if doc.has("model", "name"):
        name = doc.get("model", "name")
        if model_name:
            out["model_name"] = name
        else:
            notes.info(
                ("model", "name"),
                f"`model.name: {name}`: this 2.x config has no model name; not carried over",
            )
    doc.get("version")
    return out


STRATEGIES_2X = (
    "basic",
    "mse",
    "bayesian",
    "random",
    "exhaustive",
    "sigopt",
    "tpe",
    "mse_v2",
    "hawq_v2",
)


@dataclass
class Tuning:
    kwargs: dict[str, object] = field(
        default_factory=dict
    )  # accuracy_criterion, tuning_criterion, quant_level
    statements: list[Call] = field(default_factory=list)  # set_random_seed(...) etc.
    performance_only: bool = False


def tuning(doc: YamlDoc, notes: Notes, *, criteria: bool) -> Tuning:
    """The `tuning` section. `criteria`: the 2.x class takes accuracy/tuning criteria."""
    out = Tuning()
    for key, setter in (("random_seed", "set_random_seed"), ("tensorboard", "set_tensorboard")):
        if doc.has("tuning", key):
            out.statements.append(Call(setter, args=[doc.get("tuning", key)]))
    for key, setter in (("path", "set_workspace"), ("resume", "set_resume_from")):
        if doc.has("tuning", "workspace", key):
            out.statements.append(Call(setter, args=[doc.get("tuning", "workspace", key)]))
    if not criteria:
        return out  # the engine reports the unread tuning fields: they had no effect here
    accuracy: dict[str, object] = {}
    acc = ("tuning", "accuracy_criterion")
    if doc.has(*acc, "relative"):
        accuracy["criterion"] = "relative"
        accuracy["tolerable_loss"] = percent(doc.get(*acc, "relative"))
    if doc.has(*acc, "absolute"):
        if "criterion" in accuracy:
            notes.todo(
                acc, "both `relative` and `absolute` are set (1.x rejected this); using `absolute`"
            )
        accuracy["criterion"] = "absolute"
        accuracy["tolerable_loss"] = percent(doc.get(*acc, "absolute"))
    if doc.has(*acc, "higher_is_better"):
        accuracy["higher_is_better"] = doc.get(*acc, "higher_is_better")
    if accuracy:
        out.kwargs["accuracy_criterion"] = Call(
            "AccuracyCriterion",
            dict(
                sorted(
                    accuracy.items(),
                    key=lambda kv: ("higher_is_better", "criterion", "tolerable_loss").index(kv[0]),
                )
            ),
        )
    crit: dict[str, object] = {}
    strategy = ("tuning", "strategy")
    if doc.has(*strategy, "name"):
        name = doc.get(*strategy, "name")
        if name == "conservative":
            out.kwargs["quant_level"] = 0
        elif name == "auto":
            out.kwargs["quant_level"] = "auto"
        elif name in STRATEGIES_2X:
            crit["strategy"] = name
            out.kwargs["quant_level"] = 1  # otherwise quant_level="auto" overrides the strategy
        else:
            notes.todo(
                (*strategy, "name"),
                f"strategy `{name}` does not exist in 2.x (choose one of {', '.join(STRATEGIES_2X)})",
            )
    kwargs = {}
    for key in (
        "sigopt_api_token",
        "sigopt_project_id",
        "sigopt_experiment_name",
        "accuracy_weight",
        "latency_weight",
        "confidence_batches",
        "hawq_v2_loss",
    ):
        if doc.has(*strategy, key):
            kwargs[key] = doc.get(*strategy, key)
    if kwargs:
        crit["strategy_kwargs"] = kwargs
    if doc.has("tuning", "objective"):
        crit["objective"] = doc.get("tuning", "objective")
    if doc.has("tuning", "multi_objectives"):
        multi = doc.get("tuning", "multi_objectives")
        objective: dict[str, object] = {"objective": as_list(multi.get("objective", []))}
        if "weight" in multi:
            objective["weight"] = floats(multi["weight"])
        if "higher_is_better" in multi:
            objective["higher_is_better"] = [
                v if isinstance(v, bool) else v == "True"
                for v in as_list(multi["higher_is_better"])
            ]
        crit["objective"] = objective
    for key in ("timeout", "max_trials"):
        if doc.has("tuning", "exit_policy", key):
            crit[key] = doc.get("tuning", "exit_policy", key)
    if doc.has("tuning", "exit_policy", "performance_only"):
        out.performance_only = bool(doc.get("tuning", "exit_policy", "performance_only"))
    if crit:
        out.kwargs["tuning_criterion"] = Call("TuningCriterion", crit)
    return out


def diagnosis(doc: YamlDoc, notes: Notes) -> bool:
    if not doc.has("tuning", "diagnosis"):
        return False
    value = doc.get("tuning", "diagnosis")
    if isinstance(value, bool):
        return value
    on = bool(value.get("diagnosis_after_tuning", False))
    for key in value:
        if key != "diagnosis_after_tuning":
            notes.no_home(doc, ("tuning", "diagnosis", key))
    return on


_DICT_KEYS = ("granularity", "scheme", "dtype", "algorithm")


def _op_entry(doc: YamlDoc, notes: Notes, keys: Keys) -> dict[str, dict[str, list[object]]]:
    """One 1.x {weight: {...}, activation: {...}} entry as a 2.x op dict value (lists)."""
    entry: dict[str, dict[str, list[object]]] = {}
    raw = doc.get(*keys) or {}
    for part in ("activation", "weight"):
        if part not in raw:
            continue
        values = raw[part] or {}
        out: dict[str, list[object]] = {}
        for key, value in values.items():
            if key in _DICT_KEYS:
                out[key] = as_list(value)
            elif key == "bit" and as_list(value) in ([7.0], [7]):
                continue  # the 1.x default
            else:
                notes.no_home(doc, (*keys, part, key), value)
        if out:
            entry[part] = out
    return entry


def op_dicts(doc: YamlDoc, notes: Notes) -> dict[str, object]:
    out: dict[str, object] = {}
    q = ("quantization",)
    op_type: dict[str, object] = {}
    if doc.has(*q, "model_wise"):
        entry = _op_entry(doc, notes, (*q, "model_wise"))
        if entry:
            op_type[".*"] = entry
    for name in doc.get(*q, "optype_wise") or {}:
        entry = _op_entry(doc, notes, (*q, "optype_wise", name))
        if entry:
            op_type[name] = entry
    op_name: dict[str, object] = {}
    for name in doc.get(*q, "op_wise") or {}:
        if name == "default_qconfig":
            notes.no_home(doc, (*q, "op_wise", name))
            continue
        entry = _op_entry(doc, notes, (*q, "op_wise", name))
        if entry:
            op_name[str(name)] = entry
    if op_type:
        out["op_type_dict"] = op_type
    if op_name:
        out["op_name_dict"] = op_name
    return out


_RECIPES_2X = (
    "first_conv_or_matmul_quantization",
    "last_conv_or_matmul_quantization",
    "pre_post_process_quantization",
    "fast_bias_correction",
    "weight_correction",
)


@dataclass
class Quant:
    approach: str  # static / dynamic / auto / qat
    kwargs: dict[str, object]
    tuning: Tuning
    yaml_calib_dataloader: bool
    train_section: bool


def quant_approach(doc: YamlDoc) -> str:
    approach = doc.data.get("quantization", {}) or {}
    value = approach.get("approach", "post_training_static_quant")
    framework = (doc.data.get("model") or {}).get("framework")
    if framework == "onnxrt_integerops" and value == "post_training_static_quant":
        return "dynamic"
    return {
        "post_training_static_quant": "static",
        "post_training_dynamic_quant": "dynamic",
        "post_training_auto_quant": "auto",
        "quant_aware_training": "qat",
    }[value]


def quantization(doc: YamlDoc, notes: Notes) -> Quant:
    """PostTrainingQuantConfig / QuantizationAwareTrainingConfig kwargs from the yaml."""
    approach = quant_approach(doc)
    qat = approach == "qat"
    q = ("quantization",)
    kwargs = framework_kwargs(doc, notes, model_name=qat, fx=True)
    if doc.has(*q, "approach") or doc.get("model", "framework") == "onnxrt_integerops":
        doc.get(*q, "approach")
        if not qat:
            kwargs["approach"] = approach
    if doc.has(*q, "calibration", "sampling_size"):
        size = doc.get(*q, "calibration", "sampling_size")
        if qat:
            notes.info(
                (*q, "calibration", "sampling_size"),
                "QAT does not calibrate; not carried over (no effect in 1.x either)",
            )
        else:
            kwargs["calibration_sampling_size"] = ints(size)
    yaml_calib = doc.has(*q, "calibration", "dataloader")
    recipes: dict[str, object] = {}
    for key, value in (doc.get(*q, "recipes") or {}).items():
        if key in _RECIPES_2X and not qat:
            recipes[key] = value
            doc.get(*q, "recipes", key)
        else:
            notes.no_home(doc, (*q, "recipes", key))
    if recipes:
        kwargs["recipes"] = recipes
    if doc.has(*q, "advance", "bias_correction"):
        notes.no_home(doc, (*q, "advance", "bias_correction"))
    kwargs.update(op_dicts(doc, notes))
    level = doc.get(*q, "optimization_level", default=doc.get("optimization_level"))
    if level is not None:
        kwargs["quant_level"] = level
    if doc.has("use_bf16"):
        if not doc.get("use_bf16"):
            kwargs["excluded_precisions"] = ["bf16"]
    tune = tuning(doc, notes, criteria=True)
    if "quant_level" in tune.kwargs and "quant_level" in kwargs:
        notes.info(
            ("tuning", "strategy", "name"),
            "both optimization_level and a strategy are set; the strategy decides quant_level",
        )
    kwargs.update(tune.kwargs)
    if not qat and diagnosis(doc, notes):
        kwargs["diagnosis"] = True
    elif qat and doc.has("tuning", "diagnosis"):
        notes.no_home(doc, ("tuning", "diagnosis"))
    return Quant(approach, kwargs, tune, yaml_calib, doc.has(*q, "train"))


# ---- evaluation ---------------------------------------------------------------------


@dataclass
class Evaluation:
    metric: dict[str, object] | None
    yaml_dataloader: bool


def evaluation(doc: YamlDoc, notes: Notes, *, used: bool) -> Evaluation:
    """`evaluation.accuracy`; `used`: the component evaluates through yaml (no eval_func)."""
    acc = ("evaluation", "accuracy")
    if not used:
        return Evaluation(None, False)
    metric = None
    if doc.has(*acc, "metric"):
        metric = dict(doc.get(*acc, "metric"))
    elif doc.has(*acc, "multi_metrics"):
        multi = dict(doc.get(*acc, "multi_metrics"))
        if "weight" in multi:
            multi["weight"] = floats(multi["weight"])
        if "higher_is_better" in multi:
            multi["higher_is_better"] = [
                v if isinstance(v, bool) else v == "True"
                for v in as_list(multi["higher_is_better"])
            ]
        metric = multi
    for key in ("postprocess", "configs"):
        if doc.has(*acc, key):
            notes.no_home(doc, (*acc, key))
    if doc.has(*acc, "iteration") and doc.get(*acc, "iteration") != -1:
        notes.no_home(doc, (*acc, "iteration"))
    return Evaluation(metric, doc.has(*acc, "dataloader"))


# ---- pruning ------------------------------------------------------------------------

_LEGACY_TYPES = {
    "basic_magnitude": "magnitude",
    "pattern_lock": "pattern_lock",
    "group_lasso": "magnitude",
    "gradient_sensitivity": "snip_momentum",
}
PRUNING_TYPES_2X = (
    "magnitude",
    "gradient",
    "snip",
    "snip_momentum",
    "snip_momentum_block",
    "retrain_free",
    "pattern_lock",
)


def pattern_2x(pattern: str) -> str:
    """`tile_pattern_4x1` -> `4x1` (2.x ignores a prefix before `_` too, but say it plainly)."""
    return pattern.rsplit("_", 1)[-1] if "_" in pattern else pattern


def module_regex(name: str) -> Regex:
    """A 1.x parameter name (`layer1.0.conv1.weight`) as a 2.x module-name regex.

    2.x `re.search`es `op_names` against module names, so the name is anchored and
    escaped: `^layer1\\.0\\.conv1$` matches that module only (not `layer1.0.conv10`).
    """
    module = name[: -len(".weight")] if name.endswith(".weight") else name
    return Regex("^" + re.escape(module) + "$")


@dataclass
class Pruning:
    kwargs: dict[str, object]
    tuning: Tuning
    uses_epochs: bool  # kwargs refer to the steps-per-epoch name
    train_section: bool


def _epochs_to_steps(epochs: Any, steps: str) -> object:
    """`epochs` x the optimizer steps of one epoch (`steps` names that number in the code)."""
    if epochs == 0:
        return 0
    if epochs == 1:
        return Code(steps)
    if isinstance(epochs, float) and not epochs.is_integer():
        return Code(f"int({epochs!r} * {steps})")
    return Code(f"{int(epochs)} * {steps}")


def pruning(doc: YamlDoc, notes: Notes, steps: str = "steps_per_epoch") -> Pruning:
    """WeightPruningConfig kwargs from `pruning.approach.weight_compression[_pytorch]`."""
    approach = ("pruning", "approach")
    sections = [
        s for s in ("weight_compression", "weight_compression_pytorch") if doc.has(*approach, s)
    ]
    kwargs = framework_kwargs(doc, notes, model_name=False, backend=False)
    uses_epochs = False
    pruners: list[dict[str, object]] = []
    globals_: dict[str, object] = {}
    if not sections:
        notes.todo(
            approach,
            "the yaml has no pruning.approach.weight_compression; 1.x defaults (target_sparsity 0.97, basic_magnitude, epochs 0-4) are written out",
        )
        sections = ["weight_compression"]
    if len(sections) == 2:
        notes.todo(
            approach,
            "both weight_compression and weight_compression_pytorch are set; each becomes its own pruner list here, check the result",
        )
    for section in sections:
        legacy = section == "weight_compression"
        base = (*approach, section)
        g, local, epochs = _pruning_section(doc, notes, base, legacy, steps)
        uses_epochs = uses_epochs or epochs
        if not globals_:
            globals_ = g
            pruners.extend(local)
        else:
            pruners.extend({**g, **p} for p in (local or [{}]))
    kwargs.update(globals_)
    if len(pruners) == 1:
        kwargs.update(pruners[0])
    elif pruners:
        kwargs["pruning_configs"] = [_ordered(p) for p in pruners]
    tune = tuning(doc, notes, criteria=False)
    kwargs = _ordered(kwargs)
    return Pruning(kwargs, tune, uses_epochs, doc.has("pruning", "train"))


# WeightPruningConfig's parameter order, then the extra keys 2.x accepts
_PRUNING_ORDER = (
    "pruning_configs",
    "target_sparsity",
    "pruning_type",
    "pattern",
    "op_names",
    "excluded_op_names",
    "start_step",
    "end_step",
    "pruning_scope",
    "pruning_frequency",
    "min_sparsity_ratio_per_op",
    "max_sparsity_ratio_per_op",
    "sparsity_decay_type",
    "pruning_op_types",
    "reg_type",
    "parameters",
)


def _ordered(kwargs: dict[str, object]) -> dict[str, object]:
    rank = {k: i for i, k in enumerate(_PRUNING_ORDER)}
    return dict(sorted(kwargs.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _pruning_section(
    doc: YamlDoc, notes: Notes, base: Keys, legacy: bool, steps: str
) -> tuple[dict[str, object], list[dict[str, object]], bool]:
    raw = doc.get(*base) or {}
    uses_epochs = False

    def convert(keys: Keys, values: dict[str, Any]) -> dict[str, object]:
        nonlocal uses_epochs
        out: dict[str, object] = {}
        names_to_modules = module_regex if legacy else Regex
        for key, value in values.items():
            k = (*keys, key)
            doc.consumed.add(k)
            if key == "target_sparsity":
                out["target_sparsity"] = float(value)
            elif key == "initial_sparsity":
                if value:
                    notes.no_home(doc, k, value)
            elif key == "max_sparsity_ratio_per_layer":
                out["max_sparsity_ratio_per_op"] = float(value)
            elif key == "prune_type":
                out.update(_prune_type(doc, notes, k, value, values))
            elif key in ("start_epoch", "end_epoch", "update_frequency"):
                if not legacy:
                    notes.todo(
                        k,
                        f"`{dotted(k)}` is epoch based; the 1.x pytorch pruner used steps only and ignored it; not carried over",
                    )
                    continue
                uses_epochs = True
                target = {
                    "start_epoch": "start_step",
                    "end_epoch": "end_step",
                    "update_frequency": "pruning_frequency",
                }[key]
                out[target] = _epochs_to_steps(value, steps)
            elif key in ("start_step", "end_step", "update_frequency_on_step"):
                target = {
                    "start_step": "start_step",
                    "end_step": "end_step",
                    "update_frequency_on_step": "pruning_frequency",
                }[key]
                if legacy:
                    if value not in (0, 1):
                        notes.info(
                            k,
                            f"`{dotted(k)}` is step based; the 1.x legacy pruners schedule by epoch and ignored it; not carried over",
                        )
                    continue
                out[target] = value
            elif key in ("names",):
                kept = [n for n in value if not legacy or n.endswith(".weight")]
                out["op_names"] = [names_to_modules(n) for n in kept]
                dropped = [n for n in value if n not in kept]
                if dropped:
                    notes.todo(
                        k,
                        f"{', '.join(dropped)}: not a `.weight` parameter; 2.x prunes module weights only; not carried over",
                    )
            elif key in ("excluded_names", "extra_excluded_names"):
                out.setdefault("excluded_op_names", [])
                out["excluded_op_names"] += [names_to_modules(n) for n in value]  # type: ignore[operator]
            elif key == "prune_domain":
                if legacy:
                    notes.info(
                        k,
                        "the 1.x legacy pruners computed a threshold per layer whatever prune_domain says; pruning_scope='local' reproduces that",
                    )
                else:
                    out["pruning_scope"] = value
            elif key == "prune_layer_type":
                out["pruning_op_types"] = list(value)
            elif key == "sparsity_decay_type":
                out["sparsity_decay_type"] = value
            elif key == "pattern":
                out["pattern"] = pattern_2x(value)
            elif key == "method":
                if value == "per_channel":
                    notes.todo(
                        k,
                        "`method: per_channel` (a threshold per output channel) has no 2.x equivalent; pruning_scope='local' (a threshold per layer) is the closest",
                    )
            elif key == "parameters":
                pass  # read with prune_type
            elif key == "pruners":
                pass
            else:  # pragma: no cover - validate() rejects unknown keys
                notes.no_home(doc, k, value)
        return out

    top = {k: v for k, v in raw.items() if k != "pruners"}
    pruners = raw.get("pruners") or []
    if legacy and pruners:
        # 1.x legacy pruners: method, prune_type, pattern and update_frequency come from the
        # !Pruner itself (its defaults: per_tensor, basic_magnitude, tile_pattern_1x1, 1 epoch);
        # the other keys fall back to weight_compression.
        for key in ("prune_type", "pattern", "update_frequency", "method"):
            if key in top:
                doc.consumed.add((*base, key))
                notes.info(
                    (*base, key),
                    f"`{dotted((*base, key))}: {top.pop(key)}` is ignored by 1.x legacy pruners (each !Pruner has its own, default {_LEGACY_DEFAULTS[key]!r}); not carried over",
                )
    globals_ = convert(base, top)
    locals_: list[dict[str, object]] = []
    if legacy:
        # A legacy threshold is per tensor (pruning_scope='local') and the sparsity rises
        # linearly from start_epoch to end_epoch.
        globals_.setdefault("target_sparsity", 0.97)
        globals_.setdefault("start_step", 0)
        globals_.setdefault("end_step", _epochs_to_steps(4, steps))
        uses_epochs = True
        globals_["pruning_scope"] = "local"
        if "sparsity_decay_type" in top:
            notes.info(
                (*base, "sparsity_decay_type"),
                "the 1.x legacy pruners raise sparsity linearly per epoch whatever sparsity_decay_type says; 'linear' reproduces that",
            )
        globals_["sparsity_decay_type"] = "linear"
        if not pruners:
            globals_.setdefault("pruning_type", "magnitude")
            globals_.setdefault("pattern", "1x1")
            globals_.setdefault("pruning_frequency", Code(steps))
            _lock(globals_, globals_)
    else:
        globals_.setdefault("target_sparsity", 0.97)
        globals_.setdefault("pattern", "1x1")
        globals_.setdefault("pruning_type", "magnitude")
        _lock(globals_, globals_)
    for i, pruner in enumerate(pruners):
        keys = (*base, "pruners", i)
        values = dict(pruner)
        if legacy:
            for key, default in _LEGACY_DEFAULTS.items():
                values.setdefault(key, default)
        local = convert(keys, values)
        if legacy:
            local.setdefault("pruning_frequency", Code(steps))
        _lock(local, globals_)
        locals_.append({k: v for k, v in local.items() if globals_.get(k, _MISSING) != v})
    return globals_, locals_, uses_epochs


def _lock(values: dict[str, object], globals_: dict[str, object]) -> None:
    """2.x pattern_lock asserts start_step == end_step: the pattern is locked once."""
    if values.get("pruning_type", globals_.get("pruning_type")) == "pattern_lock":
        values["end_step"] = values.get("start_step", globals_.get("start_step", 0))


_LEGACY_DEFAULTS: dict[str, object] = {
    "prune_type": "basic_magnitude",
    "pattern": "tile_pattern_1x1",
    "method": "per_tensor",
    "update_frequency": 1,
}


def _prune_type(
    doc: YamlDoc, notes: Notes, keys: Keys, value: str, values: dict[str, Any]
) -> dict[str, object]:
    out: dict[str, object] = {}
    params_keys = (*keys[:-1], "parameters")
    params = values.get("parameters") or {}
    if value in _LEGACY_TYPES:
        out["pruning_type"] = _LEGACY_TYPES[value]
        if value == "group_lasso":
            out["reg_type"] = "group_lasso"
            if "alpha" in params:
                out["parameters"] = {"reg_coeff": float(params["alpha"])}
            notes.info(
                keys,
                "group_lasso: 2.x scales the group penalty by the gradient norm of each block where 1.x used the weight norm",
            )
            for extra in params:
                if extra != "alpha":
                    notes.no_home(doc, (*params_keys, extra), params[extra])
            doc.consumed.add(params_keys)
        elif value == "gradient_sensitivity":
            notes.todo(
                keys,
                "gradient_sensitivity has no exact 2.x equivalent; `snip_momentum` (|W x grad| importance) is the closest, and head pruning is pattern='mha'",
            )
            if params:
                notes.no_home(doc, params_keys, params)
        elif value == "pattern_lock":
            notes.info(
                keys, "pattern_lock: 2.x locks the pattern at one step (start_step == end_step)"
            )
    elif value in PRUNING_TYPES_2X or value.endswith("_progressive"):
        out["pruning_type"] = value
    else:
        notes.todo(
            keys,
            f"prune_type `{value}` does not exist in 2.x (one of {', '.join(PRUNING_TYPES_2X)}, or <criterion>_progressive)",
        )
    if params and value not in ("group_lasso", "gradient_sensitivity"):
        notes.no_home(doc, params_keys, params)
    return out


# ---- distillation -------------------------------------------------------------------

LOSS_CONFIGS = {
    "KnowledgeDistillationLoss": "KnowledgeDistillationLossConfig",
    "IntermediateLayersKnowledgeDistillationLoss": "IntermediateLayersKnowledgeDistillationLossConfig",
    "SelfKnowledgeDistillationLoss": "SelfKnowledgeDistillationLossConfig",
}


def layer_mappings_2x(mappings: list[Any]) -> list[Any]:
    """1.x flat intermediate-layer mappings to 2.x nested ones.

    `[s, t]` -> `[[s], [t]]` (or `[[s]]` when s == t); `[s, sp, t, tp]` -> `[[s, sp], [t, tp]]`
    (or `[[s, sp]]` when equal). Items already nested (2.x form) are kept.
    """
    out = []
    for item in mappings:
        if item and all(isinstance(x, list | tuple) for x in item):
            out.append([list(x) for x in item])
            continue
        if len(item) == 1:
            out.append([[item[0]]])
        elif len(item) == 2:
            s, t = item
            out.append([[s]] if s == t else [[s], [t]])
        elif len(item) == 4:
            s, sp, t, tp = item
            out.append([[s, sp]] if (s, sp) == (t, tp) else [[s, sp], [t, tp]])
        else:
            raise ValueError(f"a layer mapping has 1, 2 or 4 items, got {item!r}")
    return out


@dataclass
class Distillation:
    criterion: Call | None
    loss_types: list[str] | None
    optimizer: dict[str, object] | None
    tuning: Tuning
    train_section: bool
    criterion_keys: Keys | None


def distillation(doc: YamlDoc, notes: Notes, *, criterion_in_code: bool) -> Distillation:
    train = ("distillation", "train")
    framework_kwargs(doc, notes, model_name=False, backend=False)
    criterion = None
    loss_types = None
    criterion_keys = None
    crit = doc.get(*train, "criterion") if doc.has(*train, "criterion") else None
    if crit:
        if len(crit) != 1:
            notes.todo((*train, "criterion"), "1.x needs exactly one loss under criterion")
        name, params = next(iter(crit.items()))
        params = dict(params or {})
        criterion_keys = (*train, "criterion", name)
        if criterion_in_code:
            pass  # the engine reports this: the code's criterion won in 1.x
        elif name in LOSS_CONFIGS:
            if "layer_mappings" in params and name == "IntermediateLayersKnowledgeDistillationLoss":
                try:
                    params["layer_mappings"] = layer_mappings_2x(params["layer_mappings"])
                except ValueError as exc:
                    notes.todo((*criterion_keys, "layer_mappings"), str(exc))
            criterion = Call(LOSS_CONFIGS[name], params)
            loss_types = params.get("loss_types")
        else:
            notes.no_home(doc, criterion_keys, params)
    optimizer = None
    if doc.has(*train, "optimizer"):
        optimizer = dict(doc.get(*train, "optimizer"))
    section = doc.data.get("distillation", {}) or {}
    loop_keys = [k for k in (section.get("train") or {}) if k not in ("criterion", "optimizer")]
    tune = tuning(doc, notes, criteria=False)
    return Distillation(criterion, loss_types, optimizer, tune, bool(loop_keys), criterion_keys)


# ---- mixed precision, benchmark -----------------------------------------------------


def mixed_precision(doc: YamlDoc, notes: Notes) -> tuple[dict[str, object], Tuning]:
    kwargs = framework_kwargs(doc, notes, model_name=True)
    if doc.has("mixed_precision", "precisions"):
        values = [p for p in as_list(doc.get("mixed_precision", "precisions")) if p != "fp32"]
        if values:
            kwargs["precisions"] = values[0] if len(values) == 1 else values
        else:
            notes.todo(
                ("mixed_precision", "precisions"),
                "only fp32 is listed: nothing to convert (2.x precisions are bf16/fp16)",
            )
    if doc.has("mixed_precision", "op_wise"):
        notes.no_home(doc, ("mixed_precision", "op_wise"))
    tune = tuning(doc, notes, criteria=True)
    kwargs.update(tune.kwargs)
    return kwargs, tune


def benchmark(doc: YamlDoc, notes: Notes, mode: str) -> dict[str, object]:
    """BenchmarkConfig kwargs from `evaluation.<mode>`."""
    kwargs = framework_kwargs(doc, notes, model_name=True)
    section = ("evaluation", mode)
    for key in ("warmup", "iteration"):
        if doc.has(*section, key):
            kwargs[key] = doc.get(*section, key)
    for key, value in (doc.get(*section, "configs") or {}).items():
        if key in ("kmp_blocktime", "kmp_affinity"):
            notes.no_home(doc, (*section, "configs", key), value)
        else:
            kwargs[key] = value
    if doc.has(*section, "postprocess"):
        notes.no_home(doc, (*section, "postprocess"))
    return kwargs
