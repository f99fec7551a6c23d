"""The `distillation` section: the loss criterion, its layer mappings and the optimizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..codegen import Call
from .document import Keys, YamlDoc
from .fields import Notes
from .tuning_sections import Tuning, framework_kwargs, tuning

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
