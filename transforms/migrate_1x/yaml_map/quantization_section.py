"""The `quantization` section: approach, calibration, op-wise dicts and recipes."""

from __future__ import annotations

from dataclasses import dataclass

from .document import Keys, YamlDoc
from .fields import Notes
from .schema import as_list, ints
from .tuning_sections import Tuning, diagnosis, framework_kwargs, tuning

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
