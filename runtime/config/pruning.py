"""`WeightPruningConfig` and the expansion of a pruning config into validated pruners (spec 2.6)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from .validation import (
    DotDict,
    Validator,
    _choices,
    _fail,
    boolean,
    integer,
    mapping,
    number,
    one_of,
    str_list,
    string,
)

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
