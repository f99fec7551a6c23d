"""Config classes with the names, signatures, defaults and accepted values of INC 2.x.

`neural_compressor.config` (v2.2, spec section 2) is mirrored class for class, so a
script written for INC 2.x runs on this runtime by changing its imports. Every
config validates on construction *and* on attribute assignment, and a bad value
raises `ConfigValueError` (a `ValueError`) whose message names the parameter,
the value and what is allowed. INC raises bare `AssertionError`s instead.

Deliberate differences from INC (spec section 9):

* Defaults are never shared between instances (quirk 9.5): every config gets
  its own `AccuracyCriterion()`, `TuningCriterion()`, KD criterion, lists and
  dicts, and list/dict arguments are copied, so mutating one config (or the
  list you passed in) never changes another.
* `diagnosis=True` sets `max_trials=1` on *this* config's tuning criterion (a
  copy when you passed one in), not on a global instance.
* `AccuracyCriterion(tolerable_loss=0)`: an int is accepted and stored as a
  float (INC's type check rejects `0`).
* `WeightPruningConfig` validates its pruners at construction (INC only does it
  when `prepare_compression` runs); see `process_pruning_config`.
"""

from __future__ import annotations

import copy
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "AccuracyCriterion",
    "BenchmarkConfig",
    "ConfigValueError",
    "DistillationConfig",
    "DotDict",
    "IntermediateLayersKnowledgeDistillationLossConfig",
    "KnowledgeDistillationLossConfig",
    "MixedPrecisionConfig",
    "Options",
    "PRUNING_EXTRA_DEFAULTS",
    "PRUNING_GLOBAL_DEFAULTS",
    "PRUNING_TYPES",
    "PostTrainingQuantConfig",
    "QuantizationAwareTrainingConfig",
    "SelfKnowledgeDistillationLossConfig",
    "TuningCriterion",
    "WeightPruningConfig",
    "options",
    "parse_pattern",
    "process_pruning_config",
    "set_random_seed",
    "set_resume_from",
    "set_tensorboard",
    "set_workspace",
]


class ConfigValueError(ValueError):
    """A config parameter has a value that is not allowed.

    `param` is the parameter's name, `value` the rejected value and `allowed` a
    human description of the allowed values or range.
    """

    def __init__(self, owner: str, param: str, value: Any, allowed: str) -> None:
        self.owner = owner
        self.param = param
        self.value = value
        self.allowed = allowed
        where = f"{owner}: " if owner else ""
        super().__init__(f"{where}{param}={value!r} is not allowed; expected {allowed}")


# -- validators ------------------------------------------------------------------
# A validator takes (owner, param, value) and returns the value to store (possibly
# normalised) or raises ConfigValueError.
Validator = Callable[[str, str, Any], Any]


def _fail(owner: str, param: str, value: Any, allowed: str) -> ConfigValueError:
    return ConfigValueError(owner, param, value, allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(
        value
    )


def _choices(allowed: Iterable[Any]) -> str:
    return "one of " + ", ".join(repr(a) for a in allowed)


def one_of(*allowed: Any) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        # True == 1 and False == 0: a bool only passes when a bool is allowed
        if isinstance(value, bool) and not any(a is value for a in allowed):
            raise _fail(owner, param, value, _choices(allowed))
        if not any(a == value and type(a) is type(value) or a is value for a in allowed):
            raise _fail(owner, param, value, _choices(allowed))
        return value

    return check


def boolean(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, bool):
            raise _fail(owner, param, value, "True or False" + (" or None" if allow_none else ""))
        return value

    return check


def integer(
    minimum: int | None = None, maximum: int | None = None, allow_none: bool = False
) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        ok = _is_int(value)
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and maximum is not None and value > maximum:
            ok = False
        if not ok:
            bounds = []
            if minimum is not None:
                bounds.append(f">= {minimum}")
            if maximum is not None:
                bounds.append(f"<= {maximum}")
            desc = "an int" + (" " + " and ".join(bounds) if bounds else "")
            raise _fail(owner, param, value, desc + (" or None" if allow_none else ""))
        return value

    return check


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
) -> Validator:
    """A float (an int is accepted and converted) inside the given interval."""

    def check(owner: str, param: str, value: Any) -> Any:
        ok = _is_number(value)
        if ok and minimum is not None and (value <= minimum if min_open else value < minimum):
            ok = False
        if ok and maximum is not None and (value >= maximum if max_open else value > maximum):
            ok = False
        if not ok:
            low = "(" if min_open else "["
            high = ")" if max_open else "]"
            lo = "-inf" if minimum is None else repr(float(minimum))
            hi = "inf" if maximum is None else repr(float(maximum))
            raise _fail(owner, param, value, f"a float in {low}{lo}, {hi}{high}")
        return float(value)

    return check


def string(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, str):
            raise _fail(owner, param, value, "a str" + (" or None" if allow_none else ""))
        return value

    return check


def str_list(allowed: Sequence[str] | None = None, regex: bool = False) -> Validator:
    """A list (or tuple) of strings, each in `allowed` when given; stored as a new list."""

    def check(owner: str, param: str, value: Any) -> Any:
        desc = "a list of str" + (f" from {list(allowed)}" if allowed is not None else "")
        if not isinstance(value, (list, tuple)):
            raise _fail(owner, param, value, desc)
        for item in value:
            if not isinstance(item, str) or (allowed is not None and item not in allowed):
                raise _fail(owner, param, value, desc)
            if regex:
                try:
                    re.compile(item)
                except re.error as exc:
                    raise _fail(
                        owner, param, value, f"valid regular expressions ({item!r}: {exc})"
                    ) from None
        return list(value)

    return check


def mapping(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, Mapping):
            raise _fail(owner, param, value, "a dict" + (" or None" if allow_none else ""))
        return copy.deepcopy(dict(value))

    return check


def anything(owner: str, param: str, value: Any) -> Any:
    return value


class DotDict(dict):
    """A dict whose keys are also attributes (INC's `DotDict`, flat)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> DotDict:
        return DotDict(copy.deepcopy(dict(self), memo))


class _Config:
    """Base: attributes listed in `_rules` are validated whenever they are set."""

    _rules: ClassVar[dict[str, Validator]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        rule = type(self)._rules.get(name)
        if rule is not None:
            value = rule(type(self).__name__, name, value)
        object.__setattr__(self, name, value)

    def _fields(self) -> list[str]:
        return list(type(self)._rules)

    def to_dict(self) -> dict[str, Any]:
        """The validated fields (nested configs as dicts)."""
        out: dict[str, Any] = {}
        for name in self._fields():
            value = getattr(self, name, None)
            out[name] = value.to_dict() if isinstance(value, _Config) else value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k, None)!r}" for k in self._fields())
        return f"{type(self).__name__}({inner})"


# -- options -----------------------------------------------------------------------
def _default_workspace() -> str:
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return os.path.join(os.path.abspath("./nc_workspace"), stamp) + os.sep


class Options(_Config):
    """Process-wide options (`neural_compressor.config.options`, spec 2.1)."""

    _rules: ClassVar[dict[str, Validator]] = {
        "random_seed": integer(),
        "workspace": string(),
        "resume_from": string(allow_none=True),
        "tensorboard": boolean(),
    }

    def __init__(
        self,
        random_seed: int = 1978,
        workspace: str | None = None,
        resume_from: str | None = None,
        tensorboard: bool = False,
    ) -> None:
        self.random_seed = random_seed
        self.workspace = _default_workspace() if workspace is None else workspace
        self.resume_from = resume_from
        self.tensorboard = tensorboard

    def set_random_seed(self, seed: int) -> None:
        self.random_seed = seed

    def set_workspace(self, workspace: str) -> None:
        self.workspace = workspace

    def set_resume_from(self, resume_from: str | None) -> None:
        self.resume_from = resume_from

    def set_tensorboard(self, tensorboard: bool) -> None:
        self.tensorboard = tensorboard


#: the global options, like `neural_compressor.config.options`
options = Options()


def set_random_seed(seed: int) -> None:
    """`neural_compressor.set_random_seed`: the seed the tuning entry points use."""
    options.set_random_seed(seed)


def set_workspace(workspace: str) -> None:
    """`neural_compressor.set_workspace`: default folder of `save()`."""
    options.set_workspace(workspace)


def set_resume_from(resume_from: str | None) -> None:
    """`neural_compressor.set_resume_from`."""
    options.set_resume_from(resume_from)


def set_tensorboard(tensorboard: bool) -> None:
    """`neural_compressor.set_tensorboard`."""
    options.set_tensorboard(tensorboard)


# -- criteria ------------------------------------------------------------------------
class AccuracyCriterion(_Config):
    """How much accuracy a tuned model may lose (spec 2.2).

    Unlike INC, `tolerable_loss` accepts an int (`0` means 0.0); it must be >= 0.
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "higher_is_better": boolean(),
        "criterion": one_of("relative", "absolute"),
        "tolerable_loss": number(0.0),
    }

    def __init__(
        self,
        higher_is_better: bool = True,
        criterion: str = "relative",
        tolerable_loss: float = 0.01,
    ) -> None:
        self.higher_is_better = higher_is_better
        self.criterion = criterion
        self.tolerable_loss = tolerable_loss

    @property
    def relative(self) -> float | None:
        return self.tolerable_loss if self.criterion == "relative" else None

    @relative.setter
    def relative(self, value: float) -> None:
        self.criterion = "relative"
        self.tolerable_loss = value

    @property
    def absolute(self) -> float | None:
        return self.tolerable_loss if self.criterion == "absolute" else None

    @absolute.setter
    def absolute(self, value: float) -> None:
        self.criterion = "absolute"
        self.tolerable_loss = value

    def keys(self) -> tuple[str, ...]:
        return ("higher_is_better", "criterion", "tolerable_loss")

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def target(self, baseline: float) -> float:
        """The accuracy a candidate must reach, given the fp32 `baseline` (spec 2.2)."""
        tol = self.tolerable_loss
        if self.criterion == "relative":
            return baseline * (1 - tol) if self.higher_is_better else baseline * (1 + tol)
        return baseline - tol if self.higher_is_better else baseline + tol

    def is_met(self, accuracy: float, baseline: float) -> bool:
        """True when `accuracy` meets the goal relative to `baseline`.

        INC accepts `acc < target` when lower is better, so an exactly-on-target
        candidate is rejected there; here both directions accept the target itself.
        """
        target = self.target(baseline)
        return accuracy >= target if self.higher_is_better else accuracy <= target


_STRATEGIES = (
    "basic",
    "mse",
    "bayesian",
    "random",
    "exhaustive",
    "sigopt",
    "tpe",
    "mse_v2",
    "hawq_v2",
    # also accepted by INC's strategy registry and set by quant_level
    "auto",
    "conservative",
)
_OBJECTIVES = ("performance", "accuracy", "modelsize", "footprint")


def _objective(owner: str, param: str, value: Any) -> Any:
    if isinstance(value, str):
        if value not in _OBJECTIVES:
            raise _fail(owner, param, value, _choices(_OBJECTIVES) + " or a dict")
        return value
    if isinstance(value, Mapping):
        objs = value.get("objective")
        if isinstance(objs, str):
            objs = [objs]
        if (
            not isinstance(objs, (list, tuple))
            or not objs
            or any(o not in _OBJECTIVES for o in objs)
        ):
            raise _fail(
                owner, param, value, f"a dict whose 'objective' is a list from {list(_OBJECTIVES)}"
            )
        weight = value.get("weight")
        if weight is not None and (
            not isinstance(weight, (list, tuple))
            or len(weight) != len(objs)
            or not all(_is_number(w) for w in weight)
        ):
            raise _fail(
                owner, param, value, "a dict whose 'weight' is a list of numbers, one per objective"
            )
        hib = value.get("higher_is_better")
        if hib is not None and (
            not isinstance(hib, (list, tuple))
            or len(hib) != len(objs)
            or not all(isinstance(h, bool) for h in hib)
        ):
            raise _fail(
                owner,
                param,
                value,
                "a dict whose 'higher_is_better' is a list of bools, one per objective",
            )
        unknown = set(value) - {"objective", "weight", "higher_is_better"}
        if unknown:
            raise _fail(
                owner, param, value, "a dict with keys 'objective', 'weight', 'higher_is_better'"
            )
        return copy.deepcopy(dict(value))
    raise _fail(owner, param, value, _choices(_OBJECTIVES) + " or a dict")


class TuningCriterion(_Config):
    """How the tuner searches (spec 2.3). `timeout=0` stops at the first good trial."""

    _rules: ClassVar[dict[str, Validator]] = {
        "strategy": one_of(*_STRATEGIES),
        "strategy_kwargs": mapping(allow_none=True),
        "timeout": integer(0),
        "max_trials": integer(1),
        "objective": _objective,
    }

    def __init__(
        self,
        strategy: str = "basic",
        strategy_kwargs: dict[str, Any] | None = None,
        timeout: int = 0,
        max_trials: int = 100,
        objective: str | dict[str, Any] = "performance",
    ) -> None:
        self.strategy = strategy
        self.strategy_kwargs = strategy_kwargs
        self.timeout = timeout
        self.max_trials = max_trials
        self.objective = objective


def _instance_of(cls: type, allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, cls):
            raise _fail(
                owner, param, value, f"a {cls.__name__}" + (" or None" if allow_none else "")
            )
        return value

    return check


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
    out = copy.deepcopy(_RECIPE_DEFAULTS)
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


# -- pruning -----------------------------------------------------------------------------
_CRITERIA = (
    "magnitude",
    "gradient",
    "snip",
    "snip_momentum",
    "snip_momentum_block",
    "retrain_free",
)
_BLOCK_CRITERIA = ("snip_momentum_block", "retrain_free")
PRUNING_TYPES: tuple[str, ...] = (
    *_CRITERIA,
    *(f"{c}_progressive" for c in _CRITERIA),
    "pattern_lock",
)
_SCOPES = ("global", "local")
_DECAYS = ("exp", "cos", "linear", "cube")
_REDUCE_TYPES = ("mean", "sum", "max")
_REG_TYPES = (None, "group_lasso")
_PRUNING_BACKENDS = (None, "default", "pytorch")

#: spec 2.6: global keys and their defaults
PRUNING_GLOBAL_DEFAULTS: dict[str, Any] = {
    "target_sparsity": 0.9,
    "pruning_type": "snip_momentum",
    "pattern": "4x1",
    "op_names": [],
    "excluded_op_names": [],
    "start_step": 0,
    "end_step": 0,
    "pruning_scope": "global",
    "pruning_frequency": 1,
    "min_sparsity_ratio_per_op": 0.0,
    "max_sparsity_ratio_per_op": 0.98,
    "sparsity_decay_type": "exp",
    "pruning_op_types": ["Conv", "Linear"],
}
#: spec 2.6: extra keys accepted through kwargs or local dicts, with their defaults
PRUNING_EXTRA_DEFAULTS: dict[str, Any] = {
    "reg_type": None,
    "reg_coeff": 0.0,
    "criterion_reduce_type": "mean",
    "resume_from_pruned_checkpoint": False,
    "lock_init_sparsity": False,
    # not in INC: remove the pruned channels at the end of training (pruning/shrink.py)
    "shrink": False,
}
_PRUNING_KNOWN = {*PRUNING_GLOBAL_DEFAULTS, *PRUNING_EXTRA_DEFAULTS, "parameters"}
_PATTERN_HELP = "'NxM' (ints or 'channel'), 'N:M' with M > N, '1x1' or 'mha'"


def parse_pattern(pattern: str) -> tuple[str, Any, Any]:
    """`("NxM", n, m)` (n/m are ints or "channel"), `("N:M", n, m)` or `("mha", None, None)`.

    A prefix before the last `_` is ignored (`tile_pattern_4x1` is `4x1`).
    Raises `ValueError` for anything else.
    """
    if not isinstance(pattern, str):
        raise ValueError(pattern)
    core = pattern.split("_")[-1]
    if "mha" in pattern:
        return ("mha", None, None)
    for sep, kind in (("x", "NxM"), (":", "N:M")):
        if sep in core:
            parts = core.split(sep)
            if len(parts) != 2:
                break
            values: list[Any] = []
            for part in parts:
                if part == "channel" and kind == "NxM":
                    values.append("channel")
                elif part.isdigit() and int(part) > 0:
                    values.append(int(part))
                else:
                    raise ValueError(pattern)
            if kind == "N:M" and not values[1] > values[0]:
                raise ValueError(pattern)
            if kind == "NxM" and values == ["channel", "channel"]:
                raise ValueError(pattern)
            return (kind, values[0], values[1])
    raise ValueError(pattern)


def _pruner_rules() -> dict[str, Validator]:
    return {
        "target_sparsity": number(0.0, 1.0, max_open=True),
        "pruning_type": one_of(*PRUNING_TYPES),
        "pattern": string(),
        "op_names": str_list(regex=True),
        "excluded_op_names": str_list(regex=True),
        "start_step": integer(0),
        "end_step": integer(0),
        "pruning_scope": one_of(*_SCOPES),
        "pruning_frequency": integer(1),
        "min_sparsity_ratio_per_op": number(0.0, 1.0, max_open=True),
        "max_sparsity_ratio_per_op": number(0.0, 1.0, max_open=True),
        "sparsity_decay_type": one_of(*_DECAYS),
        "pruning_op_types": str_list(),
        "reg_type": one_of(*_REG_TYPES),
        "reg_coeff": number(0.0),
        "criterion_reduce_type": one_of(*_REDUCE_TYPES),
        "resume_from_pruned_checkpoint": boolean(),
        "lock_init_sparsity": boolean(),
        "shrink": boolean(),
        "parameters": mapping(),
    }


_PRUNER_RULES = _pruner_rules()


def _check_pruner(info: dict[str, Any], where: str) -> None:
    """Spec 2.6 `check_config` on one fully-filled pruner dict (normalises in place)."""
    for key, rule in _PRUNER_RULES.items():
        if key in info:
            info[key] = rule(where, key, info[key])
    if info["end_step"] < info["start_step"]:
        raise _fail(
            where, "end_step", info["end_step"], f"an int >= start_step ({info['start_step']})"
        )
    if info["min_sparsity_ratio_per_op"] > info["max_sparsity_ratio_per_op"]:
        raise _fail(
            where,
            "min_sparsity_ratio_per_op",
            info["min_sparsity_ratio_per_op"],
            f"a float in [0.0, max_sparsity_ratio_per_op={info['max_sparsity_ratio_per_op']}]",
        )
    try:
        kind, n, m = parse_pattern(info["pattern"])
    except ValueError:
        raise _fail(where, "pattern", info["pattern"], _PATTERN_HELP) from None
    ptype = info["pruning_type"]
    if kind == "N:M":
        if ptype != "pattern_lock" and info["target_sparsity"] > n / m + 1e-12:
            raise _fail(
                where,
                "target_sparsity",
                info["target_sparsity"],
                f"a float <= N/M = {n}/{m} for the N:M pattern {info['pattern']!r}",
            )
        if ptype in _BLOCK_CRITERIA:
            raise _fail(
                where, "pattern", info["pattern"], f"an NxM pattern with pruning_type {ptype!r}"
            )
    if ptype == "pattern_lock" and info["start_step"] != info["end_step"]:
        raise _fail(
            where,
            "end_step",
            info["end_step"],
            f"end_step == start_step ({info['start_step']}) with pruning_type 'pattern_lock'",
        )
    if info["reg_type"] == "group_lasso" and kind != "NxM":
        raise _fail(where, "reg_type", info["reg_type"], "None (group_lasso needs an NxM pattern)")
    # the pattern without its ignored prefix
    info["pattern"] = info["pattern"].split("_")[-1] if kind != "mha" else info["pattern"]


def _warn_unknown(keys: Iterable[str], where: str) -> None:
    for key in keys:
        if key not in _PRUNING_KNOWN:
            warnings.warn(f"{key} is not supported for config ({where})", UserWarning, stacklevel=3)


def process_pruning_config(conf: Any) -> list[dict[str, Any]]:
    """Expand a pruning config into one fully-filled, validated dict per pruner (spec 2.6).

    `conf` is a `WeightPruningConfig` (ours or any object with `weight_compression`
    and `pruning_configs`), or a mapping of global keys with an optional
    `pruning_configs` list. Layers of precedence, lowest first: the defaults,
    the global values (`None` means "default"), the global `parameters`, the
    local dict (`None` means "not set"), the local `parameters`. Every dict has
    all keys of `PRUNING_GLOBAL_DEFAULTS` and `PRUNING_EXTRA_DEFAULTS` plus
    `parameters` (`{"reg_coeff": ...}` and any other parameter), `op_names`
    `[]` becomes `[".*"]`, the pattern loses its ignored prefix, and unknown
    keys are kept (with a warning naming each, as INC does).

    Unlike INC, an explicit top-level `reg_coeff` is not overwritten by the
    default `parameters={"reg_coeff": 0.0}`.
    """
    if isinstance(conf, Mapping):
        global_values = {k: v for k, v in conf.items() if k != "pruning_configs"}
        locals_ = conf.get("pruning_configs", [{}])
    else:
        global_values = dict(conf.weight_compression)
        locals_ = conf.pruning_configs
    if locals_ is None:
        locals_ = []
    if not isinstance(locals_, (list, tuple)) or not all(isinstance(d, Mapping) for d in locals_):
        raise _fail("WeightPruningConfig", "pruning_configs", locals_, "a list of dicts")
    _warn_unknown(global_values, "WeightPruningConfig")
    base = copy.deepcopy({**PRUNING_GLOBAL_DEFAULTS, **PRUNING_EXTRA_DEFAULTS})
    for key, value in global_values.items():
        if key != "parameters" and (value is not None or key not in base):
            base[key] = copy.deepcopy(value)
    params: dict[str, Any] = {}
    global_params = global_values.get("parameters")
    if global_params is not None:
        params.update(mapping()("WeightPruningConfig", "parameters", global_params))
        base.update(copy.deepcopy(params))
    pruners = []
    for index, local in enumerate(locals_ or [{}]):
        where = f"WeightPruningConfig.pruning_configs[{index}]" if local else "WeightPruningConfig"
        _warn_unknown(local, where)
        info = copy.deepcopy(base)
        for key, value in local.items():
            if key != "parameters" and value is not None:
                info[key] = copy.deepcopy(value)
        pruner_params = copy.deepcopy(params)
        local_params = local.get("parameters")
        if local_params is not None:
            local_params = mapping()(where, "parameters", local_params)
            pruner_params.update(local_params)
            info.update(copy.deepcopy(local_params))
        _check_pruner(info, where)
        if not info["op_names"]:
            info["op_names"] = [".*"]
        pruner_params["reg_coeff"] = info["reg_coeff"]
        info["parameters"] = pruner_params
        pruners.append(info)
    return pruners


class WeightPruningConfig:
    """Training-time weight pruning (spec 2.6).

    `.weight_compression` is a `DotDict` of the global values plus extra
    `**kwargs`; `.pruning_configs` the list of local dicts (each one becomes a
    pruner). Everything is validated at construction (INC validates only when
    the pruners are built); call `process_pruning_config(conf)` for the expanded
    per-pruner dicts. Global values can also be read as attributes
    (`conf.target_sparsity`). Unknown keys produce a warning naming them.
    """

    def __init__(
        self,
        pruning_configs: list[dict[str, Any]] | None = None,
        target_sparsity: float = 0.9,
        pruning_type: str = "snip_momentum",
        pattern: str = "4x1",
        op_names: list[str] | None = None,
        excluded_op_names: list[str] | None = None,
        backend: str | None = None,
        start_step: int = 0,
        end_step: int = 0,
        pruning_scope: str = "global",
        pruning_frequency: int = 1,
        min_sparsity_ratio_per_op: float = 0.0,
        max_sparsity_ratio_per_op: float = 0.98,
        sparsity_decay_type: str = "exp",
        pruning_op_types: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if backend not in _PRUNING_BACKENDS:
            raise _fail(
                "WeightPruningConfig",
                "backend",
                backend,
                _choices(_PRUNING_BACKENDS) + " (this runtime prunes PyTorch models)",
            )
        self.backend = backend
        if pruning_configs is None:
            pruning_configs = [{}]
        if not isinstance(pruning_configs, (list, tuple)) or not all(
            isinstance(d, Mapping) for d in pruning_configs
        ):
            raise _fail(
                "WeightPruningConfig", "pruning_configs", pruning_configs, "a list of dicts"
            )
        self.pruning_configs: list[dict[str, Any]] = [
            copy.deepcopy(dict(d)) for d in pruning_configs
        ]
        wc = DotDict(
            target_sparsity=target_sparsity,
            pruning_type=pruning_type,
            pattern=pattern,
            op_names=[] if op_names is None else copy.deepcopy(op_names),
            excluded_op_names=[] if excluded_op_names is None else copy.deepcopy(excluded_op_names),
            start_step=start_step,
            end_step=end_step,
            pruning_scope=pruning_scope,
            pruning_frequency=pruning_frequency,
            min_sparsity_ratio_per_op=min_sparsity_ratio_per_op,
            max_sparsity_ratio_per_op=max_sparsity_ratio_per_op,
            sparsity_decay_type=sparsity_decay_type,
            pruning_op_types=(
                ["Conv", "Linear"] if pruning_op_types is None else copy.deepcopy(pruning_op_types)
            ),
        )
        wc.update(copy.deepcopy(kwargs))
        self._weight_compression = wc
        process_pruning_config(self)  # validates (raises ConfigValueError) and warns

    @property
    def weight_compression(self) -> DotDict:
        return self._weight_compression

    @weight_compression.setter
    def weight_compression(self, value: Mapping[str, Any]) -> None:
        self._weight_compression = DotDict(copy.deepcopy(dict(value)))

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not regular attributes
        if name.startswith("_"):
            raise AttributeError(name)
        wc = self.__dict__.get("_weight_compression")
        if wc is not None and name in wc:
            return wc[name]
        raise AttributeError(f"'WeightPruningConfig' object has no attribute {name!r}")

    def __repr__(self) -> str:
        return (
            f"WeightPruningConfig(pruning_configs={self.pruning_configs!r}, "
            f"weight_compression={dict(self.weight_compression)!r})"
        )


# -- distillation ------------------------------------------------------------------------
def _weights_in_unit(owner: str, param: str, value: Any, count: int | None) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        _is_number(w) and 0.0 <= w <= 1.0 for w in value
    ):
        raise _fail(owner, param, value, "a list of floats, each in [0.0, 1.0]")
    if count is not None and len(value) != count:
        raise _fail(owner, param, value, f"a list of {count} floats, each in [0.0, 1.0]")
    return [float(w) for w in value]


def _types_from(
    owner: str, param: str, value: Any, allowed: tuple[str, ...], count: int | None
) -> list[str]:
    desc = f"a list of values from {list(allowed)}" + (
        f" with {count} items" if count is not None else ""
    )
    if not isinstance(value, (list, tuple)) or not all(v in allowed for v in value):
        raise _fail(owner, param, value, desc)
    if count is not None and len(value) != count:
        raise _fail(owner, param, value, desc)
    return list(value)


def _kd_loss_types(owner: str, param: str, value: Any) -> Any:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or value[0] not in ("CE", "MSE")
        or value[1] not in ("CE", "KL", "MSE")
    ):
        raise _fail(
            owner,
            param,
            value,
            "[student-vs-label loss in 'CE'/'MSE', student-vs-teacher loss in 'CE'/'KL'/'MSE']",
        )
    return list(value)


def _kd_loss_weights(owner: str, param: str, value: Any) -> Any:
    weights = _weights_in_unit(owner, param, value, 2)
    if abs(sum(weights) - 1.0) > 1e-6:
        raise _fail(owner, param, value, "two floats in [0.0, 1.0] summing to 1")
    return weights


class KnowledgeDistillationLossConfig(_Config):
    """Output-level KD loss (spec 2.7 / 4.1).

    `loss_types[0]` (student vs label) is `CE` or `MSE`; `loss_types[1]` (student
    vs teacher) is `CE`, `KL` or `MSE`; two weights in [0, 1] that sum to 1
    within 1e-6 (INC: 1e-9, which can reject sums that are 1 on paper).
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "temperature": number(0.0, min_open=True),
        "loss_types": _kd_loss_types,
        "loss_weights": _kd_loss_weights,
    }

    def __init__(
        self,
        temperature: float = 1.0,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
    ) -> None:
        self.temperature = temperature
        self.loss_types = ["CE", "CE"] if loss_types is None else loss_types
        self.loss_weights = [0.5, 0.5] if loss_weights is None else loss_weights

    @property
    def config(self) -> DotDict:
        return DotDict(
            KnowledgeDistillationLoss={
                "temperature": self.temperature,
                "loss_types": list(self.loss_types),
                "loss_weights": list(self.loss_weights),
            }
        )


def _layer_ref(item: Any) -> bool:
    """One side of a mapping: "name", (name,) or (name, proc) with proc a str or callable."""
    if isinstance(item, str):
        return True
    if (
        not isinstance(item, (list, tuple))
        or not 1 <= len(item) <= 2
        or not isinstance(item[0], str)
    ):
        return False
    return len(item) == 1 or isinstance(item[1], str) or callable(item[1])


class IntermediateLayersKnowledgeDistillationLossConfig(_Config):
    """Intermediate-layer KD (spec 2.7 / 4.2).

    Each mapping is `[student_ref, teacher_ref]` or `[ref]` (same layer name in
    both models), where a ref is `"name"`, `("name",)` or `("name", proc)` and
    proc is a key / numeric index string or a callable. Missing `loss_types`
    default to `MSE` and missing `loss_weights` to `1/len` per mapping.
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "layer_mappings": anything,
        "loss_types": anything,
        "loss_weights": anything,
        "add_origin_loss": boolean(),
    }
    _LOSS_TYPES: ClassVar[tuple[str, ...]] = ("MSE", "KL", "L1")

    def __init__(
        self,
        layer_mappings: list[Any] | None = None,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        owner = type(self).__name__
        mappings = [] if layer_mappings is None else layer_mappings
        if not isinstance(mappings, (list, tuple)):
            raise _fail(owner, "layer_mappings", layer_mappings, "a list of layer mappings")
        for item in mappings:
            if (
                not isinstance(item, (list, tuple))
                or not 1 <= len(item) <= 2
                or not all(_layer_ref(ref) for ref in item)
            ):
                raise _fail(
                    owner,
                    "layer_mappings",
                    item,
                    "items [(student_layer, proc), (teacher_layer, proc)], "
                    "[(student_layer,), (teacher_layer,)] or [(layer_name[, proc])]",
                )
        count = len(mappings)
        self.layer_mappings = copy.copy(list(mappings))
        self.loss_types = _types_from(
            owner, "loss_types", loss_types or ["MSE"] * count, self._LOSS_TYPES, count
        )
        self.loss_weights = _weights_in_unit(
            owner,
            "loss_weights",
            loss_weights or ([1.0 / count] * count if count else []),
            count,
        )
        self.add_origin_loss = add_origin_loss

    @property
    def config(self) -> DotDict:
        return DotDict(
            {
                "IntermediateLayersKnowledgeDistillationLoss": {
                    "layer_mappings": list(self.layer_mappings),
                    "loss_types": list(self.loss_types),
                    "loss_weights": list(self.loss_weights),
                    "add_origin_loss": self.add_origin_loss,
                }
            }
        )


class SelfKnowledgeDistillationLossConfig(_Config):
    """Self-distillation (spec 2.7 / 4.3): `layer_mappings` is a list of groups, each a
    list of `[student_name, teacher_name]` pairs (keys of the model's output dict).
    `loss_types` items are `CE`, `KL`, `L2` (default `CE`); weights default to
    `1/len(groups)`."""

    _rules: ClassVar[dict[str, Validator]] = {
        "layer_mappings": anything,
        "temperature": number(0.0, min_open=True),
        "loss_types": anything,
        "loss_weights": anything,
        "add_origin_loss": boolean(),
    }
    _LOSS_TYPES: ClassVar[tuple[str, ...]] = ("CE", "KL", "L2")

    def __init__(
        self,
        layer_mappings: list[Any] | None = None,
        temperature: float = 1.0,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        owner = type(self).__name__
        groups = [] if layer_mappings is None else layer_mappings
        bad = not isinstance(groups, (list, tuple))
        if not bad:
            for group in groups:
                if not isinstance(group, (list, tuple)) or not all(
                    isinstance(pair, (list, tuple))
                    and len(pair) == 2
                    and all(isinstance(n, str) for n in pair)
                    for pair in group
                ):
                    bad = True
        if bad:
            raise _fail(
                owner,
                "layer_mappings",
                layer_mappings,
                "a list of groups, each a list of [student_name, teacher_name] pairs of str",
            )
        count = len(groups)
        self.layer_mappings = copy.deepcopy(list(groups))
        self.temperature = temperature
        self.loss_types = _types_from(
            owner, "loss_types", loss_types or ["CE"] * count, self._LOSS_TYPES, count
        )
        self.loss_weights = _weights_in_unit(
            owner,
            "loss_weights",
            loss_weights or ([1.0 / count] * count if count else []),
            count,
        )
        self.add_origin_loss = add_origin_loss

    @property
    def config(self) -> DotDict:
        return DotDict(
            SelfKnowledgeDistillationLoss={
                "layer_mappings": copy.deepcopy(self.layer_mappings),
                "temperature": self.temperature,
                "loss_types": list(self.loss_types),
                "loss_weights": list(self.loss_weights),
                "add_origin_loss": self.add_origin_loss,
            }
        )


_KD_CRITERIA = (
    KnowledgeDistillationLossConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    SelfKnowledgeDistillationLossConfig,
)


def _criterion(owner: str, param: str, value: Any) -> Any:
    if isinstance(value, _KD_CRITERIA):
        return value
    cfg = getattr(value, "config", None)  # INC's own criterion configs
    if isinstance(cfg, Mapping) and len(cfg) == 1:
        return value
    raise _fail(
        owner,
        param,
        value,
        "a KnowledgeDistillationLossConfig, IntermediateLayersKnowledgeDistillationLossConfig "
        "or SelfKnowledgeDistillationLossConfig",
    )


def _teacher(owner: str, param: str, value: Any) -> Any:
    import torch

    if value is None or isinstance(value, torch.nn.Module):
        return value
    raise _fail(owner, param, value, "a torch.nn.Module (None only until prepare_compression)")


class DistillationConfig(_Config):
    """Knowledge distillation (spec 2.7): positional order `(teacher_model, criterion,
    optimizer)`. `optimizer` is stored and not used, as in INC. A `teacher_model`
    of None is accepted here and rejected when the compression is prepared."""

    _rules: ClassVar[dict[str, Validator]] = {
        "teacher_model": _teacher,
        "criterion": _criterion,
        "optimizer": mapping(),
    }

    def __init__(
        self,
        teacher_model: Any = None,
        criterion: Any = None,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        self.teacher_model = teacher_model
        self.criterion = KnowledgeDistillationLossConfig() if criterion is None else criterion
        self.optimizer = {"SGD": {"learning_rate": 0.0001}} if optimizer is None else optimizer

    def __repr__(self) -> str:
        teacher = type(self.teacher_model).__name__ if self.teacher_model is not None else None
        return (
            f"DistillationConfig(teacher_model=<{teacher}>, criterion={self.criterion!r}, "
            f"optimizer={self.optimizer!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "teacher_model": self.teacher_model,
            "criterion": self.criterion.config,
            "optimizer": self.optimizer,
        }


# -- mixed precision and benchmark -----------------------------------------------------
class MixedPrecisionConfig(_Config):
    """bf16 / fp16 conversion (spec 2.8). `precisions` is stored as a list; the
    v2.1 spelling `precision=` is accepted too (not both with different values)."""

    _rules: ClassVar[dict[str, Validator]] = {
        "device": one_of(*_DEVICES),
        "backend": one_of(*_BACKENDS),
        "precisions": _precision_list,
        "model_name": string(),
        "inputs": str_list(),
        "outputs": str_list(),
        "tuning_criterion": _instance_of(TuningCriterion),
        "accuracy_criterion": _instance_of(AccuracyCriterion),
        "excluded_precisions": _excluded_precisions,
        "op_name_dict": _op_dict,
        "op_type_dict": _op_dict,
        "example_inputs": anything,
    }

    framework: str | None = None

    def __init__(
        self,
        device: str = "cpu",
        backend: str = "default",
        precisions: str | list[str] = "bf16",
        model_name: str = "",
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        tuning_criterion: TuningCriterion | None = None,
        accuracy_criterion: AccuracyCriterion | None = None,
        excluded_precisions: list[str] | None = None,
        op_name_dict: dict[str, Any] | None = None,
        op_type_dict: dict[str, Any] | None = None,
        example_inputs: Any = None,
        *,
        precision: str | list[str] | None = None,
    ) -> None:
        if precision is not None:
            alias = _precision_list(type(self).__name__, "precision", precision)
            if (
                precisions != "bf16"
                and _precision_list(type(self).__name__, "precisions", precisions) != alias
            ):
                raise _fail(
                    type(self).__name__,
                    "precision",
                    precision,
                    f"the same value as precisions={precisions!r} (give only one of them)",
                )
            precisions = alias
        self.device = device
        self.backend = backend
        self.precisions = precisions
        self.model_name = model_name
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.tuning_criterion = TuningCriterion() if tuning_criterion is None else tuning_criterion
        self.accuracy_criterion = (
            AccuracyCriterion() if accuracy_criterion is None else accuracy_criterion
        )
        self.excluded_precisions = excluded_precisions
        self.op_name_dict = {} if op_name_dict is None else op_name_dict
        self.op_type_dict = {} if op_type_dict is None else op_type_dict
        self.example_inputs = example_inputs

    @property
    def precision(self) -> list[str]:
        """v2.1's name for `precisions`."""
        return self.precisions

    @precision.setter
    def precision(self, value: str | list[str]) -> None:
        self.precisions = value

    @property
    def use_bf16(self) -> bool:
        return "bf16" in self.precisions


def _iteration(owner: str, param: str, value: Any) -> Any:
    if not _is_int(value) or not (value == -1 or value > 0):
        raise _fail(owner, param, value, "-1 (all batches) or an int > 0")
    return value


class BenchmarkConfig(_Config):
    """`benchmark.fit` settings (spec 2.9); `iteration=-1` means the whole dataloader."""

    _rules: ClassVar[dict[str, Validator]] = {
        "inputs": str_list(),
        "outputs": str_list(),
        "backend": one_of(*_BACKENDS),
        "device": one_of(*_DEVICES),
        "warmup": integer(0),
        "iteration": _iteration,
        "model_name": string(),
        "cores_per_instance": integer(1, allow_none=True),
        "num_of_instance": integer(1),
        "inter_num_of_threads": integer(1, allow_none=True),
        "intra_num_of_threads": integer(1, allow_none=True),
        "diagnosis": boolean(),
    }

    framework: str | None = None

    def __init__(
        self,
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        backend: str = "default",
        device: str = "cpu",
        warmup: int = 5,
        iteration: int = -1,
        model_name: str = "",
        cores_per_instance: int | None = None,
        num_of_instance: int = 1,
        inter_num_of_threads: int | None = None,
        intra_num_of_threads: int | None = None,
        diagnosis: bool = False,
    ) -> None:
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.backend = backend
        self.device = device
        self.warmup = warmup
        self.iteration = iteration
        self.model_name = model_name
        self.cores_per_instance = cores_per_instance
        self.num_of_instance = num_of_instance
        self.inter_num_of_threads = inter_num_of_threads
        self.intra_num_of_threads = intra_num_of_threads
        self.diagnosis = diagnosis

    def keys(self) -> tuple[str, ...]:
        """The fields exported as upper-case environment variables (INC's order)."""
        return (
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

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)
