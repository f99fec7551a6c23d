"""The x86 / fbgemm engine, the qconfigs torch.ao is given for a `QuantSpec`, and the
silencing of torch.ao's own deprecation warnings."""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    FixedQParamsFakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    QConfig,
    QConfigMapping,
    get_default_qat_qconfig_mapping,
    get_default_qconfig_mapping,
)

from .backend import (
    DEFAULT_ACTIVATION,
    DEFAULT_WEIGHT,
    DYNAMIC,
    QAT,
    OpPlan,
    QuantSpec,
    TensorScheme,
)

_DEFAULT_PLAN = OpPlan(DEFAULT_ACTIVATION, DEFAULT_WEIGHT)


_QUIET = (
    "torch.ao.quantization is deprecated",
    "Please use quant_min and quant_max",
    "must run observer before calling calculate_qparams",
    "torch.quantize_per_tensor, torch.quantize_per_channel",
    "_aminmax is deprecated",
)


_quiet_filters: list[tuple] = []


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silences torch.ao's own deprecation and observer chatter during a quantization.

    The filters go in on first use and stay (again if something, such as a
    `catch_warnings` block that ended, took them out): a `warnings.catch_warnings()` per
    call would reset Python's record of the warnings already shown, so every show-once
    warning of the user's script would come back after each quantization."""
    if not _quiet_filters or _quiet_filters[0] not in warnings.filters:
        for text in _QUIET:
            warnings.filterwarnings("ignore", message=f".*{re.escape(text)}")
        _quiet_filters[:] = warnings.filters[: len(_QUIET)]
    yield


# -- engine and defaults -----------------------------------------------------
def select_engine() -> str:
    """`x86` where this torch build has it, else `fbgemm`; sets it process-wide."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            return engine
    raise RuntimeError(
        f"this torch build has no x86 int8 engine (supported: {engines}); "
        "int8 quantization needs an x86 CPU build of torch"
    )


@functools.cache
def _cpu_has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_reduce_range(spec: QuantSpec) -> bool:
    """INC: the user's value, else False on CPUs with VNNI (no int16 overflow), else True."""
    if spec.reduce_range is not None:
        return bool(spec.reduce_range)
    return not _cpu_has_vnni()


# -- qconfigs ---------------------------------------------------------------
def _activation(scheme: TensorScheme, approach: str, reduce_range: bool) -> Any:
    qscheme = torch.per_tensor_symmetric if scheme.scheme == "sym" else torch.per_tensor_affine
    qmax = 127 if reduce_range else 255
    if approach == QAT:
        return FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver,
            quant_min=0,
            quant_max=qmax,
            dtype=torch.quint8,
            qscheme=qscheme,
        )
    if approach == DYNAMIC:
        return PlaceholderObserver.with_args(
            dtype=torch.quint8, quant_min=0, quant_max=255, is_dynamic=True
        )
    # torch.ao has no percentile observer: the histogram (KL-style) one is the closest
    observer = HistogramObserver if scheme.algorithm in ("kl", "percentile") else MinMaxObserver
    return observer.with_args(dtype=torch.quint8, quant_min=0, quant_max=qmax, qscheme=qscheme)


def _weight(scheme: TensorScheme, approach: str) -> Any:
    per_channel = scheme.granularity != "per_tensor"
    sym = scheme.scheme not in ("asym", "asym_float")
    if per_channel:
        qscheme = torch.per_channel_symmetric if sym else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if sym else torch.per_tensor_affine
    args: dict[str, Any] = {"dtype": torch.qint8, "quant_min": -128, "quant_max": 127}
    args["qscheme"] = qscheme
    if approach == QAT:
        observer = (
            MovingAveragePerChannelMinMaxObserver if per_channel else MovingAverageMinMaxObserver
        )
        return FusedMovingAvgObsFakeQuantize.with_args(observer=observer, **args)
    return (PerChannelMinMaxObserver if per_channel else MinMaxObserver).with_args(**args)


def make_qconfig(plan: OpPlan, approach: str, reduce_range: bool) -> QConfig:
    return QConfig(
        activation=_activation(plan.activation, approach, reduce_range),
        weight=_weight(plan.weight, approach),
    )


def _qconfig_mapping(
    model: nn.Module, spec: QuantSpec, engine: str, reduce_range: bool
) -> tuple[QConfigMapping, list[nn.Module]]:
    """torch's default mapping for the engine with our qconfig as the global one and
    per-module-name entries for the spec's rules; also the modules kept float."""
    is_qat = spec.approach == QAT
    default = make_qconfig(_DEFAULT_PLAN, spec.approach, reduce_range)
    if is_qat:
        mapping = get_default_qat_qconfig_mapping(engine)
    else:
        mapping = get_default_qconfig_mapping(engine)
    mapping.set_global(default)
    # entries that reuse torch's default activation (layer norm, transposed convs) get
    # ours with their own weight handling; fixed-qparams ops (sigmoid, softmax...) keep theirs
    for key, qconfig in list(mapping.object_type_qconfigs.items()):
        if qconfig is None or isinstance(key, str) or _is_fixed_qparams(qconfig.activation):
            continue
        mapping.set_object_type(key, QConfig(activation=default.activation, weight=qconfig.weight))
    kept_float: list[nn.Module] = []
    for name, module in model.named_modules():
        if not name or next(module.children(), None) is not None:
            continue
        plan = spec.plan_for(name, module)
        if plan is None:
            mapping.set_module_name(name, None)
            kept_float.append(module)
        elif plan != _DEFAULT_PLAN:
            mapping.set_module_name(name, make_qconfig(plan, spec.approach, reduce_range))
    return mapping, kept_float


def _is_fixed_qparams(factory: Any) -> bool:
    from torch.ao.quantization.observer import FixedQParamsObserver

    target = getattr(getattr(factory, "p", None), "func", factory)
    return isinstance(target, type) and issubclass(
        target, (FixedQParamsObserver, FixedQParamsFakeQuantize)
    )
