"""The `pruning` section: 1.x pruners and weight_compression to 2.x `WeightPruningConfig`
keyword arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..codegen import Code, Regex
from .document import _MISSING, Keys, YamlDoc, dotted
from .fields import Notes
from .tuning_sections import Tuning, framework_kwargs, tuning

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
