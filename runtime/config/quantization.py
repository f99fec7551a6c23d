"""Post-training quantization and QAT configs (spec 2.4 / 2.5) and the fields they share."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .criteria import AccuracyCriterion, TuningCriterion
from .validation import (
    Validator,
    _choices,
    _Config,
    _fail,
    _instance_of,
    _is_int,
    _is_number,
    anything,
    boolean,
    one_of,
    str_list,
    string,
)

# -- quantization ------------------------------------------------------------------------
_DEVICES = ("cpu", "gpu")
_BACKENDS = ("default", "itex", "ipex", "onnxrt_trt_ep", "onnxrt_cuda_ep")
_DOMAINS = ("auto", "cv", "object_detection", "nlp", "recommendation_system")
_QUANT_FORMATS = ("default", "QDQ", "QOperator")
_PRECISIONS = ("bf16", "fp16")
_QUANT_LEVELS = ("auto", 0, 1)

_OP_SCHEMA: dict[str, dict[str, tuple[str, ...]]] = {
    "weight": {
        "granularity": ("per_channel", "per_tensor"),
        "scheme": ("asym", "sym", "asym_float"),
        "dtype": ("int8", "uint8", "fp32", "bf16", "fp16"),
        "algorithm": ("minmax",),
    },
    "activation": {
        "granularity": ("per_channel", "per_tensor"),
        "scheme": ("asym", "sym", "asym_float"),
        "dtype": ("int8", "uint8", "fp32", "bf16", "fp16", "None"),
        "algorithm": ("minmax", "kl", "placeholder", "percentile"),
    },
}


def _op_dict(owner: str, param: str, value: Any) -> Any:
    """`{regex: {'weight': {key: [values]}, 'activation': {...}}}` (spec 2.4)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(
            owner, param, value, "None or a dict {op: {'weight': {...}, 'activation': {...}}}"
        )
    for op, entry in value.items():
        where = f"{param}[{op!r}]"
        if not isinstance(op, str):
            raise _fail(owner, param, value, "str keys (op names or op types, regular expressions)")
        try:
            re.compile(op)
        except re.error as exc:
            raise _fail(owner, param, op, f"a valid regular expression ({exc})") from None
        if not isinstance(entry, Mapping):
            raise _fail(owner, where, entry, "a dict with 'weight' and/or 'activation'")
        for kind, spec in entry.items():
            if kind not in _OP_SCHEMA:
                raise _fail(owner, where, kind, _choices(_OP_SCHEMA))
            if not isinstance(spec, Mapping):
                raise _fail(owner, f"{where}[{kind!r}]", spec, "a dict")
            for key, vals in spec.items():
                allowed = _OP_SCHEMA[kind].get(key)
                at = f"{where}[{kind!r}][{key!r}]"
                if allowed is None:
                    raise _fail(owner, f"{where}[{kind!r}]", key, _choices(_OP_SCHEMA[kind]))
                if not isinstance(vals, (list, tuple)) or not all(v in allowed for v in vals):
                    raise _fail(owner, at, vals, f"a list of values from {list(allowed)}")
    return copy.deepcopy(dict(value))


def _approach(owner: str, param: str, value: Any) -> Any:
    """static/dynamic/auto; any spelling containing 'static'/'dynamic' is normalised."""
    allowed = "'static', 'dynamic' or 'auto' (or post_training_*_quant)"
    if not isinstance(value, str):
        raise _fail(owner, param, value, allowed)
    text = value.lower()
    if "static" in text:
        return "post_training_static_quant"
    if "dynamic" in text:
        return "post_training_dynamic_quant"
    if "auto" in text:
        return "post_training_auto_quant"
    raise _fail(owner, param, value, allowed)


def _sampling_size(owner: str, param: str, value: Any) -> Any:
    """An int or a list of ints > 0; always stored as a list (one tuning option each)."""
    items = [value] if not isinstance(value, (list, tuple)) else list(value)
    if not items or not all(_is_int(v) and v > 0 for v in items):
        raise _fail(owner, param, value, "an int > 0 or a non-empty list of ints > 0")
    return items


_RECIPE_DEFAULTS: dict[str, Any] = {
    "smooth_quant": False,
    "smooth_quant_args": {},
    "fast_bias_correction": False,
    "weight_correction": False,
    "gemm_to_matmul": True,
    "graph_optimization_level": None,
    "first_conv_or_matmul_quantization": True,
    "last_conv_or_matmul_quantization": True,
    "pre_post_process_quantization": True,
    "add_qdq_pair_to_weight": False,
    "optypes_to_exclude_output_quant": [],
    "dedicated_qdq_pair": False,
}
_GRAPH_LEVELS = ("DISABLE_ALL", "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_ALL")


def _recipes(owner: str, param: str, value: Any) -> Any:
    """The recipes dict with every recognised key filled with its default (spec 2.4)."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _fail(owner, param, value, f"a dict with keys from {list(_RECIPE_DEFAULTS)}")
    # the defaults' containers are empty, so a shallow copy of each is a fresh one (a
    # deepcopy of the defaults was a fifth of building a config)
    out = {
        k: copy.copy(v) if isinstance(v, (dict, list)) else v for k, v in _RECIPE_DEFAULTS.items()
    }
    for key, val in value.items():
        at = f"{param}[{key!r}]"
        if key not in _RECIPE_DEFAULTS:
            raise _fail(owner, param, key, f"recipe keys from {list(_RECIPE_DEFAULTS)}")
        if key == "smooth_quant_args":
            if not isinstance(val, Mapping):
                raise _fail(owner, at, val, "a dict such as {'alpha': 0.5}")
            alpha = val.get("alpha", 0.5)
            if not (alpha == "auto" or (_is_number(alpha) and 0.0 <= alpha <= 1.0)):
                raise _fail(owner, f"{at}['alpha']", alpha, "a float in [0.0, 1.0] or 'auto'")
        elif key == "graph_optimization_level":
            if val is not None and val not in _GRAPH_LEVELS:
                raise _fail(owner, at, val, _choices((None, *_GRAPH_LEVELS)))
        elif key == "optypes_to_exclude_output_quant":
            str_list()(owner, at, val)
        elif not isinstance(val, bool):
            raise _fail(owner, at, val, "True or False")
        out[key] = copy.deepcopy(val)
    return out


def _quant_level(owner: str, param: str, value: Any) -> Any:
    if isinstance(value, bool) or value not in _QUANT_LEVELS:
        raise _fail(owner, param, value, _choices(_QUANT_LEVELS))
    return value


def _precision_list(owner: str, param: str, value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(p in _PRECISIONS for p in items):
        raise _fail(owner, param, value, f"a str or list of str from {list(_PRECISIONS)}")
    return list(items)


def _excluded_precisions(owner: str, param: str, value: Any) -> Any:
    if value is None:
        return []
    return _precision_list(owner, param, value)


_FRAMEWORKS = (None, "pytorch", "pytorch_fx", "pytorch_ipex")


class _BaseQuantizationConfig(_Config):
    """Fields shared by post-training quantization and QAT (spec 2.4 / 2.5)."""

    _rules: ClassVar[dict[str, Validator]] = {
        "device": one_of(*_DEVICES),
        "backend": one_of(*_BACKENDS),
        "quant_format": one_of(*_QUANT_FORMATS),
        "inputs": str_list(),
        "outputs": str_list(),
        "op_type_dict": _op_dict,
        "op_name_dict": _op_dict,
        "reduce_range": boolean(allow_none=True),
        "excluded_precisions": _excluded_precisions,
        "quant_level": _quant_level,
        "accuracy_criterion": _instance_of(AccuracyCriterion),
        "tuning_criterion": _instance_of(TuningCriterion),
    }

    #: written by `Model(..., conf=...)` like INC does ("pytorch" / "pytorch_fx" / "pytorch_ipex")
    framework: str | None = None

    @property
    def use_bf16(self) -> bool:
        """bf16 fallback is allowed unless 'bf16' is in `excluded_precisions`."""
        return "bf16" not in self.excluded_precisions


class PostTrainingQuantConfig(_BaseQuantizationConfig):
    """Post-training static / dynamic quantization (spec 2.4), for `quantization.fit`.

    `approach` is stored in INC's long form (`post_training_static_quant`, ...).
    `calibration_sampling_size` is always stored as a list.
    """

    _rules: ClassVar[dict[str, Validator]] = {
        **_BaseQuantizationConfig._rules,
        "domain": one_of(*_DOMAINS),
        "recipes": _recipes,
        "approach": _approach,
        "calibration_sampling_size": _sampling_size,
        "example_inputs": anything,
        "diagnosis": boolean(),
    }

    def __init__(
        self,
        device: str = "cpu",
        backend: str = "default",
        domain: str = "auto",
        recipes: dict[str, Any] | None = None,
        quant_format: str = "default",
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        approach: str = "static",
        calibration_sampling_size: int | list[int] | None = None,
        op_type_dict: dict[str, Any] | None = None,
        op_name_dict: dict[str, Any] | None = None,
        reduce_range: bool | None = None,
        example_inputs: Any = None,
        excluded_precisions: list[str] | None = None,
        quant_level: str | int = "auto",
        accuracy_criterion: AccuracyCriterion | None = None,
        tuning_criterion: TuningCriterion | None = None,
        diagnosis: bool = False,
    ) -> None:
        self.device = device
        self.backend = backend
        self.domain = domain
        self.recipes = recipes
        self.quant_format = quant_format
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.approach = approach
        self.calibration_sampling_size = (
            [100] if calibration_sampling_size is None else calibration_sampling_size
        )
        self.op_type_dict = op_type_dict
        self.op_name_dict = op_name_dict
        self.reduce_range = reduce_range
        self.example_inputs = example_inputs
        self.excluded_precisions = excluded_precisions
        self.quant_level = quant_level
        self.accuracy_criterion = (
            AccuracyCriterion() if accuracy_criterion is None else accuracy_criterion
        )
        self.tuning_criterion = TuningCriterion() if tuning_criterion is None else tuning_criterion
        self.diagnosis = diagnosis
        if diagnosis:
            # INC forces the *global* default's max_trials to 1 (quirk 9.5); here
            # only this config's own copy changes.
            tc = copy.copy(self.tuning_criterion)
            tc.max_trials = 1
            self.tuning_criterion = tc


class QuantizationAwareTrainingConfig(_BaseQuantizationConfig):
    """Quantization-aware training (spec 2.5); `approach` is read-only."""

    _rules: ClassVar[dict[str, Validator]] = {
        **_BaseQuantizationConfig._rules,
        "model_name": string(),
    }

    def __init__(
        self,
        device: str = "cpu",
        backend: str = "default",
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        op_type_dict: dict[str, Any] | None = None,
        op_name_dict: dict[str, Any] | None = None,
        reduce_range: bool | None = None,
        model_name: str = "",
        quant_format: str = "default",
        excluded_precisions: list[str] | None = None,
        quant_level: str | int = "auto",
        accuracy_criterion: AccuracyCriterion | None = None,
        tuning_criterion: TuningCriterion | None = None,
    ) -> None:
        self.device = device
        self.backend = backend
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.op_type_dict = op_type_dict
        self.op_name_dict = op_name_dict
        self.reduce_range = reduce_range
        self.model_name = model_name
        self.quant_format = quant_format
        self.excluded_precisions = excluded_precisions
        self.quant_level = quant_level
        self.accuracy_criterion = (
            AccuracyCriterion() if accuracy_criterion is None else accuracy_criterion
        )
        self.tuning_criterion = TuningCriterion() if tuning_criterion is None else tuning_criterion

    @property
    def approach(self) -> str:
        return "quant_aware_training"
