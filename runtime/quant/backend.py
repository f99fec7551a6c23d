"""The one interface between the runtime and a quantization library.

Nothing outside `runtime/quant/` touches `torch.ao.quantization`: the QAT
compressor, `quantization.fit` and `loading.load` talk to a `QuantBackend` and
hand it a `QuantSpec`, a small description of *what* to quantize resolved from
an INC 2.x config (`op_type_dict` / `op_name_dict`, `approach`,
`reduce_range`). How it is done (FX graph mode, eager module swaps, which
engine) is the backend's business; it reports the path it took and returns a
*recipe*, a JSON-able dict stored in the wrapper's `q_config` so that
`rebuild_quantized` can recreate the int8 structure for `load_state_dict`.

Op selection follows INC (spec 2.4, 2.5): keys of `op_type_dict` are regexes
fullmatched against the module class name (`"Linear"`, `"Conv2d"`), keys of
`op_name_dict` regexes fullmatched against the module's qualified name; name
rules override type rules. An op whose entry pins `weight.dtype` to a list
without an int8 type (INC's `['fp32']`) stays float. Deliberate difference:
INC's QAT ignores an `activation.dtype` of `['fp32']` and still quantizes the op
fully; here that op also stays float, since no int8 kernel takes float inputs.
Rules apply to modules; functional ops (`torch.add`, `F.linear`) have no name to
match and follow the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from torch import nn

from ..int8_device import RECIPE_ATTR

QAT = "quant_aware_training"
STATIC = "post_training_static_quant"
DYNAMIC = "post_training_dynamic_quant"
APPROACHES = (QAT, STATIC, DYNAMIC)

#: version of the recipe layout written into `q_config`
RECIPE_FORMAT = "neural_coder.quant/1"

_INT8_DTYPES = frozenset({"int8", "uint8"})
_SCHEMES = ("sym", "asym", "asym_float")
_GRANULARITIES = ("per_channel", "per_tensor")
_ALGORITHMS = ("minmax", "kl", "percentile", "placeholder")


def normalize_approach(approach: str) -> str:
    """INC's spellings (`static`, `post_training_static_quant`, `auto`, QAT) -> one constant.

    `auto` (static first, dynamic where static fails) is treated as static:
    there is no tuning loop in the backend.
    """
    text = str(approach).lower()
    if "aware" in text or text in {"qat", "quant_aware_training"}:
        return QAT
    if "dynamic" in text:
        return DYNAMIC
    if "static" in text or "auto" in text:
        return STATIC
    raise ValueError(
        f"unknown quantization approach {approach!r}; allowed: 'static', 'dynamic', 'auto', "
        f"{', '.join(repr(a) for a in APPROACHES)}"
    )


def _first(value: Any) -> str | None:
    """INC op-dict values are lists of tuning options, default first; take the first."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return str(value)


#: static PTQ of a model whose class must stay (a LightningModule): FX on each direct child
#: that holds quantizable modules (eager where a child does not trace), the root kept
CHILDREN_PATH = "fx_children"


@dataclass(frozen=True)
class TensorScheme:
    """How one tensor kind (activation or weight) is quantized; None = backend default."""

    scheme: str | None = None  # "sym" | "asym"
    granularity: str | None = None  # "per_channel" | "per_tensor"
    algorithm: str | None = None  # "minmax" | "kl" | "percentile"

    @classmethod
    def from_inc(cls, entry: Mapping[str, Any] | None) -> TensorScheme:
        entry = entry or {}
        scheme = _first(entry.get("scheme"))
        granularity = _first(entry.get("granularity"))
        algorithm = _first(entry.get("algorithm"))
        for value, allowed, key in (
            (scheme, _SCHEMES, "scheme"),
            (granularity, _GRANULARITIES, "granularity"),
            (algorithm, _ALGORITHMS, "algorithm"),
        ):
            if value is not None and value not in allowed:
                raise ValueError(f"unsupported {key} {value!r}; allowed: {', '.join(allowed)}")
        return cls(scheme=scheme, granularity=granularity, algorithm=algorithm)

    def merged(self, other: TensorScheme) -> TensorScheme:
        """`other`'s settings where it has them, else ours."""
        return TensorScheme(
            scheme=other.scheme or self.scheme,
            granularity=other.granularity or self.granularity,
            algorithm=other.algorithm or self.algorithm,
        )

    def to_dict(self) -> dict[str, str | None]:
        return {
            "scheme": self.scheme,
            "granularity": self.granularity,
            "algorithm": self.algorithm,
        }


@dataclass(frozen=True)
class OpRule:
    """One `op_type_dict` / `op_name_dict` entry."""

    pattern: str
    by: str  # "type" | "name"
    quantize: bool = True
    activation: TensorScheme = field(default_factory=TensorScheme)
    weight: TensorScheme = field(default_factory=TensorScheme)

    @classmethod
    def from_inc(cls, pattern: str, by: str, entry: Mapping[str, Any] | None) -> OpRule:
        entry = entry or {}
        if not isinstance(entry, Mapping):
            raise ValueError(f"op_{by}_dict[{pattern!r}] must be a dict, got {entry!r}")
        quantize = True
        for kind in ("weight", "activation"):
            dtypes = (entry.get(kind) or {}).get("dtype")
            if dtypes is None:
                continue
            dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
            # `['fp32']`, `['bf16']`: no int8 option left for this op -> keep it float
            if dtypes and not _INT8_DTYPES.intersection(str(d) for d in dtypes):
                quantize = False
        return cls(
            pattern=pattern,
            by=by,
            quantize=quantize,
            activation=TensorScheme.from_inc(entry.get("activation")),
            weight=TensorScheme.from_inc(entry.get("weight")),
        )

    def matches(self, name: str, type_name: str) -> bool:
        return re.fullmatch(self.pattern, name if self.by == "name" else type_name) is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "by": self.by,
            "quantize": self.quantize,
            "activation": self.activation.to_dict(),
            "weight": self.weight.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpRule:
        return cls(
            pattern=data["pattern"],
            by=data["by"],
            quantize=bool(data["quantize"]),
            activation=TensorScheme(**data.get("activation", {})),
            weight=TensorScheme(**data.get("weight", {})),
        )


@dataclass(frozen=True)
class OpPlan:
    """What one module gets: its activation and weight schemes (defaults filled in)."""

    activation: TensorScheme
    weight: TensorScheme


#: defaults of INC's PyTorch FX adaptor: uint8 per-tensor affine activations,
#: int8 per-channel symmetric weights, min-max observers
DEFAULT_ACTIVATION = TensorScheme(scheme="asym", granularity="per_tensor", algorithm="minmax")
DEFAULT_WEIGHT = TensorScheme(scheme="sym", granularity="per_channel", algorithm="minmax")


@dataclass(frozen=True)
class QuantSpec:
    """What to quantize and how, independent of the library that does it."""

    approach: str = QAT
    rules: tuple[OpRule, ...] = ()
    #: None: decided by the backend (INC: False on CPUs with VNNI, else True)
    reduce_range: bool | None = None
    #: "fx" / "eager" / "fx_children" forces a path (used when rebuilding); None tries FX first
    path: str | None = None
    #: positional inputs for FX preparation; not stored in the recipe
    example_inputs: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.approach not in APPROACHES:
            object.__setattr__(self, "approach", normalize_approach(self.approach))
        if self.path not in (None, "fx", "eager", CHILDREN_PATH):
            raise ValueError(
                f"path must be 'fx', 'eager', {CHILDREN_PATH!r} or None, got {self.path!r}"
            )

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_config(cls, conf: Any, approach: str | None = None) -> QuantSpec:
        """Read an INC 2.x config (ours or INC's own: only attributes are used).

        v2.0's `op_type_list` / `op_name_list` are read when the v2.1+ names are absent.
        """
        if approach is None:
            approach = getattr(conf, "approach", None) or STATIC
        type_dict = _attr(conf, "op_type_dict", "op_type_list")
        name_dict = _attr(conf, "op_name_dict", "op_name_list")
        # type rules first, name rules after: the last matching rule wins
        rules = [OpRule.from_inc(p, "type", e) for p, e in (type_dict or {}).items()]
        rules += [OpRule.from_inc(p, "name", e) for p, e in (name_dict or {}).items()]
        example = getattr(conf, "example_inputs", None)
        if example is not None and not isinstance(example, tuple):
            example = (example,)
        return cls(
            approach=normalize_approach(approach),
            rules=tuple(rules),
            reduce_range=getattr(conf, "reduce_range", None),
            example_inputs=example,
        )

    # -- queries --------------------------------------------------------------
    @property
    def excluded_names(self) -> tuple[str, ...]:
        return tuple(r.pattern for r in self.rules if r.by == "name" and not r.quantize)

    @property
    def excluded_types(self) -> tuple[str, ...]:
        return tuple(r.pattern for r in self.rules if r.by == "type" and not r.quantize)

    def plan_for(self, name: str, module: nn.Module) -> OpPlan | None:
        """The plan for the module at `name`, or None when the rules keep it float."""
        type_name = type(module).__name__
        activation, weight = DEFAULT_ACTIVATION, DEFAULT_WEIGHT
        quantize = True
        for rule in self.rules:
            if rule.matches(name, type_name):
                quantize = rule.quantize
                activation = activation.merged(rule.activation)
                weight = weight.merged(rule.weight)
        return OpPlan(activation, weight) if quantize else None

    # -- recipe ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "approach": self.approach,
            "rules": [r.to_dict() for r in self.rules],
            "reduce_range": self.reduce_range,
            "path": self.path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantSpec:
        return cls(
            approach=data["approach"],
            rules=tuple(OpRule.from_dict(r) for r in data.get("rules", ())),
            reduce_range=data.get("reduce_range"),
            path=data.get("path"),
        )

    @classmethod
    def of_recipe(cls, recipe: Mapping[str, Any]) -> QuantSpec:
        """The spec a recipe was made with (an int8 model's, or a fake-quant model's:
        `int8_device.attach_fake_quant_recipe`), with the path and the reduce_range the
        backend resolved, which the recipe records beside it."""
        spec = cls.from_dict(recipe["spec"])
        return replace(
            spec,
            reduce_range=recipe.get("reduce_range", spec.reduce_range),
            path=recipe.get("path", spec.path),
        )

    def with_path(self, path: str | None) -> QuantSpec:
        return replace(self, path=path)


def _attr(conf: Any, *names: str) -> Any:
    for name in names:
        value = getattr(conf, name, None)
        if value is not None:
            return value
    return None


@dataclass
class PreparedModel:
    """A model ready for QAT (fake-quant) or calibration (observers)."""

    model: nn.Module
    path: str  # "fx" | "eager"
    fallback_reason: str | None
    spec: QuantSpec
    #: resolved options (engine, reduce_range) the conversion and the recipe need
    info: dict[str, Any] = field(default_factory=dict)


def get_recipe(model: nn.Module) -> dict[str, Any] | None:
    """The recipe the backend attached to an int8 model it produced."""
    recipe = getattr(model, RECIPE_ATTR, None)
    return dict(recipe) if isinstance(recipe, dict) else None


@runtime_checkable
class QuantBackend(Protocol):
    """A quantization library behind the runtime.

    Contract for `prepare_qat`: the model is prepared *without copying it*.
    Every parameter of the prepared model that comes from the float model is
    the same `Parameter` object (the user's optimizer keeps training it), and
    every selected Linear / Conv at name N is still reachable at name N with
    `.weight` being that Parameter. A module that replaces the one at name N
    takes over N's hook tables (the same dicts): hooks keep firing and their
    handles keep working, whether or not the owner re-registers them.
    `convert` converts a copy unless told `inplace`, so the prepared model
    stays usable; the int8 model is on the CPU, in eval mode, and carries none
    of the prepared model's hooks (a new model: the wrapper notifies and the
    owners re-register). `quantize_static` / `quantize_dynamic` work on a copy,
    leave the float model untouched and carry none of its hooks. Every int8
    model returned carries its recipe (see `get_recipe`).
    """

    name: str

    def prepare_qat(self, model: nn.Module, spec: QuantSpec) -> PreparedModel: ...

    def convert(self, prepared: PreparedModel, inplace: bool = False) -> nn.Module: ...

    def quantize_static(
        self, model: nn.Module, spec: QuantSpec, calibrate: Callable[[nn.Module], None]
    ) -> nn.Module: ...

    def quantize_dynamic(self, model: nn.Module, spec: QuantSpec) -> nn.Module: ...

    def count_quantized_modules(self, model: nn.Module) -> int: ...

    def rebuild(self, fp32_model: nn.Module, recipe: Mapping[str, Any]) -> nn.Module: ...
