"""Reading a Distiller-style compression schedule (a "recipe") into checked objects.

A recipe separates *what* compresses (named instances in `pruners`,
`regularizers`, `quantizers`, `lr_schedulers` and, our addition since Distiller
could not express it in yaml, `distillers`) from *when* (`policies`, each naming
one instance with `starting_epoch`, `ending_epoch` and `frequency`). Everything
is checked here, before a model is seen: an unknown section, class or key is an
error that lists what is allowed. Parameter and module names are checked
against the model later, when training begins (`names.py`).

yaml is read with `yaml.safe_load` only.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLASSES",
    "GROUP_TYPES",
    "Instance",
    "Policy",
    "Recipe",
    "RecipeError",
    "parse_recipe",
    "read_recipe",
]


class RecipeError(ValueError):
    """A recipe that cannot be carried out: what is wrong, where, and what is allowed."""

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


SECTIONS = {
    "pruners": "pruner",
    "regularizers": "regularizer",
    "quantizers": "quantizer",
    "lr_schedulers": "lr_scheduler",
    "distillers": "distiller",
}
TOP_LEVEL = ("version", *SECTIONS, "policies")
POLICY_KEYS = ("starting_epoch", "ending_epoch", "frequency")
GROUP_TYPES = ("2D", "3D", "4D", "Channels", "Cols", "Rows")
STRUCTURE_GROUPS = ("Filters", "Channels")
THRESHOLD_CRITERIA = ("Mean_Abs", "Max")

#: section -> class -> (required keys, optional keys)
CLASSES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "pruners": {
        "AutomatedGradualPruner": (("initial_sparsity", "final_sparsity", "weights"), ()),
        "L1RankedStructureParameterPruner_AGP": (
            ("initial_sparsity", "final_sparsity", "group_type", "weights"),
            ("shrink",),
        ),
        "L2RankedStructureParameterPruner_AGP": (
            ("initial_sparsity", "final_sparsity", "group_type", "weights"),
            ("shrink",),
        ),
        "SparsityLevelParameterPruner": (("levels",), ()),
        "SensitivityPruner": (("sensitivities",), ()),
        "L1RankedStructureParameterPruner": (
            ("group_type", "desired_sparsity", "weights"),
            ("shrink",),
        ),
        "L2RankedStructureParameterPruner": (
            ("group_type", "desired_sparsity", "weights"),
            ("shrink",),
        ),
    },
    "regularizers": {
        "L1Regularizer": (("reg_regims",), ("threshold_criteria",)),
        "GroupLassoRegularizer": (("reg_regims",), ("threshold_criteria", "threshold")),
    },
    "quantizers": {
        "QuantAwareTrainRangeLinearQuantization": (
            (),
            ("bits_activations", "bits_weights", "bits_bias", "overrides", "backend"),
        ),
    },
    "lr_schedulers": {},  # any torch.optim.lr_scheduler class, see _check_lr_scheduler
    "distillers": {
        "KnowledgeDistillationPolicy": (
            (),
            ("temperature", "distill_wt", "student_wt", "loss_types"),
        ),
    },
}
#: Distiller classes this runtime does not carry out, and why
NOT_SUPPORTED = {
    "DorefaQuantizer": "DoReFa's low-bit weight/activation quantization",
    "WRPNQuantizer": "WRPN's low-bit quantization",
    "PACTQuantizer": "PACT's learned activation clipping",
    "PostTrainLinearQuantizer": "post-training quantization (use neural_coder.runtime."
    "quantization.fit, or neural-coder optimize --approach ptq-static)",
}


@dataclass
class Instance:
    """One named pruner / regularizer / quantizer / LR scheduler / distiller."""

    section: str
    name: str
    cls: str
    args: dict[str, Any]


@dataclass
class Policy:
    """When one instance acts: epochs `starting_epoch, +frequency, ...` below
    `ending_epoch` (None: to the end of the run), as in Distiller."""

    kind: str  # "pruner", "regularizer", ...
    instance: Instance
    starting_epoch: int = 0
    ending_epoch: int | None = None
    frequency: int = 1
    index: int = 0

    def fires(self, epoch: int) -> bool:
        end = math.inf if self.ending_epoch is None else self.ending_epoch
        return (
            self.starting_epoch <= epoch < end
            and (epoch - self.starting_epoch) % self.frequency == 0
        )

    def last_epoch(self, run_epochs: int | None = None) -> int | None:
        """The last epoch this policy fires at (None: unbounded and the run length unknown)."""
        end = self.ending_epoch if self.ending_epoch is not None else run_epochs
        if end is None:
            return None
        if end <= self.starting_epoch:
            return self.starting_epoch
        return (
            self.starting_epoch
            + ((end - 1 - self.starting_epoch) // self.frequency) * self.frequency
        )

    @property
    def label(self) -> str:
        end = "end" if self.ending_epoch is None else str(self.ending_epoch)
        return (
            f"{self.kind} {self.instance.name} ({self.instance.cls}), epochs "
            f"{self.starting_epoch}-{end} every {self.frequency}"
        )


@dataclass
class Recipe:
    source: str
    instances: dict[str, dict[str, Instance]] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Policy]:
        return [p for p in self.policies if p.kind == kind]

    @property
    def shrink(self) -> bool:
        """Whether a scheduled structure pruner asks for the pruned channels to be removed
        at the end of training (`shrink: true`)."""
        return any(p.instance.args.get("shrink") is True for p in self.of_kind("pruner"))


def read_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Parse the recipe file at `path` (yaml, `safe_load` only)."""
    import yaml

    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError("recipe file not found", source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(
            f"not valid yaml{where}: {getattr(error, 'problem', error)}", source
        ) from None
    return parse_recipe(data, source)


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """Check a recipe mapping (what `yaml.safe_load` returned, or a dict written in code)."""
    if not isinstance(data, Mapping):
        raise RecipeError("a recipe must be a mapping with 'version: 1' and 'policies'", source)
    unknown = [k for k in data if k not in TOP_LEVEL]
    if unknown:
        raise RecipeError(
            f"unknown section {unknown[0]!r}; allowed: {', '.join(TOP_LEVEL)}", source
        )
    if data.get("version", 1) != 1:
        raise RecipeError(f"version {data['version']!r} is not supported; use 'version: 1'", source)
    recipe = Recipe(source=source)
    names: dict[str, str] = {}
    for section in SECTIONS:
        block = data.get(section) or {}
        if not isinstance(block, Mapping):
            raise RecipeError(f"{section} must map instance names to their settings", source)
        recipe.instances[section] = {}
        for name, spec in block.items():
            name = str(name)
            if name in names:
                raise RecipeError(
                    f"instance name {name!r} is used in both {names[name]} and {section}", source
                )
            names[name] = section
            recipe.instances[section][name] = _instance(section, name, spec, source)
    if len(recipe.instances["quantizers"]) > 1:
        raise RecipeError("only one quantizer instance may be defined (as in Distiller)", source)
    policies = data.get("policies") or []
    if not isinstance(policies, list):
        raise RecipeError("policies must be a list", source)
    for index, item in enumerate(policies):
        recipe.policies.append(_policy(item, index, recipe, source))
    if recipe.shrink and recipe.of_kind("quantizer"):
        raise RecipeError(
            "shrink: true removes channels from float models only, and this recipe also "
            "schedules a quantizer (its model is prepared for QAT when training begins): "
            "prune and shrink in one run, then run QAT on the shrunk model in another",
            source,
        )
    return recipe


def _instance(section: str, name: str, spec: Any, source: str) -> Instance:
    where = f"{section}.{name}"
    if not isinstance(spec, Mapping) or "class" not in spec:
        raise RecipeError(f"{where} needs a 'class'", source)
    cls = str(spec["class"])
    args = {str(k): v for k, v in spec.items() if k != "class"}
    if section == "lr_schedulers":
        _check_lr_scheduler(where, cls, args, source)
        return Instance(section, name, cls, args)
    table = CLASSES[section]
    if cls not in table:
        why = f" ({NOT_SUPPORTED[cls]} is not supported)" if cls in NOT_SUPPORTED else ""
        raise RecipeError(
            f"{where}: unknown class {cls!r}{why}; supported {section}: {', '.join(table)}", source
        )
    required, optional = table[cls]
    for key in args:
        if key not in required and key not in optional:
            raise RecipeError(
                f"{where}: unknown key {key!r} for {cls}; allowed: "
                f"{', '.join((*required, *optional)) or '(none)'}",
                source,
            )
    missing = [k for k in required if k not in args]
    if missing:
        raise RecipeError(f"{where}: {cls} needs {', '.join(missing)}", source)
    _check_values(where, cls, args, source)
    return Instance(section, name, cls, args)


def _fraction(where: str, key: str, value: Any, source: str, upper_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise RecipeError(f"{where}: {key} must be a number in [0, 1), got {value!r}", source)
    return float(value)


def _number(where: str, key: str, value: Any, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RecipeError(f"{where}: {key} must be a number >= 0, got {value!r}", source)
    return float(value)


def _names(where: str, key: str, value: Any, source: str) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"{where}: {key} must be a list of parameter names", source)


def _check_values(where: str, cls: str, args: dict[str, Any], source: str) -> None:
    for key in ("initial_sparsity", "final_sparsity", "desired_sparsity"):
        if key in args:
            _fraction(where, key, args[key], source)
    if "weights" in args:
        _names(where, "weights", args["weights"], source)
    if "shrink" in args and not isinstance(args["shrink"], bool):
        raise RecipeError(f"{where}: shrink must be true or false, got {args['shrink']!r}", source)
    if "group_type" in args and args["group_type"] not in STRUCTURE_GROUPS:
        raise RecipeError(
            f"{where}: group_type {args['group_type']!r} is not one of {', '.join(STRUCTURE_GROUPS)}",
            source,
        )
    for key, check in (("levels", _fraction), ("sensitivities", _number)):
        if key in args:
            if not isinstance(args[key], Mapping) or not args[key]:
                raise RecipeError(f"{where}: {key} must map parameter names to numbers", source)
            for pname, value in args[key].items():
                check(where, f"{key}[{pname!r}]", value, source)
    if "reg_regims" in args:
        _check_regims(where, cls, args["reg_regims"], source)
    if args.get("threshold_criteria") not in (None, *THRESHOLD_CRITERIA):
        raise RecipeError(
            f"{where}: threshold_criteria {args['threshold_criteria']!r} is not one of "
            f"{', '.join(THRESHOLD_CRITERIA)}",
            source,
        )
    if "threshold" in args:
        _number(where, "threshold", args["threshold"], source)
    for key in ("bits_activations", "bits_weights"):
        if args.get(key, 8) not in (8, None):
            raise RecipeError(
                f"{where}: {key} {args[key]!r}: the torch.ao backend trains int8 only; use 8, or "
                "null to keep float",
                source,
            )
    if args.get("bits_bias") not in (None, 32):
        raise RecipeError(f"{where}: bits_bias must be null or 32 (biases stay float)", source)
    if "overrides" in args:
        _check_overrides(where, args["overrides"], source)
    if args.get("backend", "default") not in ("default", "ipex"):
        raise RecipeError(f"{where}: backend must be 'default' or 'ipex'", source)
    if "temperature" in args and _number(where, "temperature", args["temperature"], source) <= 0:
        raise RecipeError(f"{where}: temperature must be > 0", source)
    for key in ("distill_wt", "student_wt"):
        if key in args:
            _number(where, key, args[key], source)
    if "loss_types" in args:
        types = args["loss_types"]
        if not (isinstance(types, list) and len(types) == 2 and types[0] in ("CE", "MSE")
                and types[1] in ("CE", "KL", "MSE")):  # fmt: skip
            raise RecipeError(
                f"{where}: loss_types must be [student-vs-labels, student-vs-teacher], from "
                "[CE|MSE, CE|KL|MSE]",
                source,
            )


def _check_regims(where: str, cls: str, regims: Any, source: str) -> None:
    if not isinstance(regims, Mapping) or not regims:
        raise RecipeError(f"{where}: reg_regims must map parameter names to strengths", source)
    for pname, value in regims.items():
        if cls == "L1Regularizer":
            _number(where, f"reg_regims[{pname!r}]", value, source)
            continue
        if not (isinstance(value, list) and len(value) == 2):
            raise RecipeError(
                f"{where}: reg_regims[{pname!r}] must be [strength, group], group one of "
                f"{', '.join(GROUP_TYPES)}",
                source,
            )
        _number(where, f"reg_regims[{pname!r}] strength", value[0], source)
        if value[1] not in GROUP_TYPES:
            raise RecipeError(
                f"{where}: reg_regims[{pname!r}] group {value[1]!r} is not one of "
                f"{', '.join(GROUP_TYPES)}",
                source,
            )


def _check_overrides(where: str, overrides: Any, source: str) -> None:
    if not isinstance(overrides, Mapping):
        raise RecipeError(f"{where}: overrides must map module-name regexes to settings", source)
    import re

    for pattern, setting in overrides.items():
        try:
            re.compile(str(pattern))
        except re.error as error:
            raise RecipeError(
                f"{where}: overrides key {pattern!r} is not a regex: {error}", source
            ) from None
        if not isinstance(setting, Mapping):
            raise RecipeError(f"{where}: overrides[{pattern!r}] must be a mapping", source)
        for key in setting:
            if key not in ("bits_weights", "bits_activations"):
                raise RecipeError(
                    f"{where}: overrides[{pattern!r}] key {key!r}; allowed: bits_weights, "
                    "bits_activations",
                    source,
                )
        values = {setting.get("bits_weights", 8), setting.get("bits_activations", 8)}
        if values not in ({8}, {None}):
            raise RecipeError(
                f"{where}: overrides[{pattern!r}]: the torch.ao backend quantizes a module's "
                "weights and activations together; set both to 8, or both to null to keep it float",
                source,
            )


def lr_scheduler_classes() -> dict[str, type]:
    """Every epoch-stepped scheduler class in `torch.optim.lr_scheduler`."""
    from torch.optim import lr_scheduler

    base = getattr(lr_scheduler, "LRScheduler", lr_scheduler._LRScheduler)
    return {
        name: obj
        for name, obj in vars(lr_scheduler).items()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and not name.startswith("_")
        and name not in ("LRScheduler",)
    }


def _check_lr_scheduler(where: str, cls: str, args: dict[str, Any], source: str) -> None:
    classes = lr_scheduler_classes()
    if cls not in classes:
        why = (
            " (it steps on a metric, which a schedule cannot pass)"
            if cls == "ReduceLROnPlateau"
            else ""
        )
        raise RecipeError(
            f"{where}: unknown class {cls!r}{why}; any torch.optim.lr_scheduler class: "
            f"{', '.join(sorted(classes))}",
            source,
        )
    if cls in ("SequentialLR", "ChainedScheduler"):
        raise RecipeError(f"{where}: {cls} takes scheduler objects, which yaml cannot hold", source)
    signature = inspect.signature(classes[cls])
    takes = [n for n in list(signature.parameters)[1:] if n not in ("verbose",)]
    unknown = [k for k in args if k not in signature.parameters or k == "optimizer"]
    if unknown:
        raise RecipeError(
            f"{where}: {cls} takes no {unknown[0]!r}; it takes {', '.join(takes)}", source
        )
    try:
        signature.bind(None, **args)
    except TypeError as error:
        raise RecipeError(f"{where}: {cls} ({', '.join(takes)}): {error}", source) from None


def _policy(item: Any, index: int, recipe: Recipe, source: str) -> Policy:
    where = f"policies[{index}]"
    if not isinstance(item, Mapping):
        raise RecipeError(f"{where} must be a mapping", source)
    kinds = [k for k in item if k in SECTIONS.values()]
    unknown = [k for k in item if k not in SECTIONS.values() and k not in POLICY_KEYS]
    if unknown or len(kinds) != 1:
        raise RecipeError(
            f"{where}: a policy names exactly one of {', '.join(SECTIONS.values())} and may set "
            f"{', '.join(POLICY_KEYS)}"
            + (f" (unknown key {unknown[0]!r})" if unknown else f" (found {kinds or 'none'})"),
            source,
        )
    kind = kinds[0]
    section = next(s for s, k in SECTIONS.items() if k == kind)
    ref = item[kind]
    if not isinstance(ref, Mapping) or "instance_name" not in ref:
        raise RecipeError(f"{where}: {kind} must be a mapping with instance_name", source)
    timing = {k: item[k] for k in POLICY_KEYS if k in item}
    for key, value in ref.items():  # the seed's quantizer example nests the epochs here
        if key == "instance_name":
            continue
        if key not in POLICY_KEYS:
            raise RecipeError(
                f"{where}.{kind}: unknown key {key!r}; allowed: instance_name, "
                f"{', '.join(POLICY_KEYS)}",
                source,
            )
        if key in timing:
            raise RecipeError(f"{where}: {key} is set twice", source)
        timing[key] = value
    name = str(ref["instance_name"])
    instance = recipe.instances[section].get(name)
    if instance is None:
        defined = ", ".join(recipe.instances[section]) or "none"
        raise RecipeError(
            f"{where}: no {kind} named {name!r} in {section} (defined: {defined})", source
        )
    for key, value in timing.items():
        if value is None and key == "ending_epoch":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (1 if key == "frequency" else 0)
        ):
            raise RecipeError(
                f"{where}: {key} must be an integer >= {1 if key == 'frequency' else 0}, got {value!r}",
                source,
            )
    policy = Policy(kind, instance, index=index, **timing)
    if policy.ending_epoch is not None and policy.ending_epoch <= policy.starting_epoch:
        raise RecipeError(
            f"{where}: ending_epoch {policy.ending_epoch} must be after starting_epoch "
            f"{policy.starting_epoch} (epochs run from starting_epoch up to, not including, "
            "ending_epoch)",
            source,
        )
    return policy
