"""Which modules one pruner config selects (spec 1.5 / 2.6), the classifier head
pruning leaves out (INC >= 2.2), and why a config selected nothing. See
`compressor.py`'s docstring for the selection rules."""

from __future__ import annotations

import logging
import re
from typing import Any

from torch import nn

__all__ = ["classifier_head", "select_modules", "why_unselected"]

log = logging.getLogger("neural_coder.runtime.pruning.compressor")


def why_unselected(info: dict[str, Any], model: nn.Module, head: str | None) -> str:
    """Why a pruner found no module: the settings, the head it leaves out, and where
    the model's weights are when they are in module types pruning does not cover."""
    op_types = list(info.get("pruning_op_types") or [])
    why = f"op_names={info.get('op_names')}, pruning_op_types={op_types}"
    if head is not None:
        why += f"; the classifier head {head} is never pruned (INC >= 2.2 behaviour)"
    others = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if any(True for _ in m.parameters(recurse=False))
            and not any(t in type(m).__name__ for t in op_types)
        }
    )
    if others:
        why += f"; the other weights are in {', '.join(others)} modules, which are not pruned"
    return why


def classifier_head(model: nn.Module) -> str | None:
    """The name of the last `nn.Linear` in `named_modules()` order (INC's head detection)."""
    head = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            head = name
    return head


def select_modules(
    info: dict[str, Any], model: nn.Module, head: str | None = None
) -> dict[str, nn.Parameter]:
    """`name -> weight` of the modules one pruner config selects (spec 1.5 / 2.6)."""
    op_names = [re.compile(p) for p in (info.get("op_names") or [".*"])]
    excluded = [re.compile(p) for p in (info.get("excluded_op_names") or [])]
    op_types = list(info.get("pruning_op_types") or ["Conv", "Linear"])
    selected: dict[str, nn.Parameter] = {}
    seen: dict[int, str] = {}
    for name, module in model.named_modules():
        cls = type(module).__name__
        if not any(t in cls for t in op_types):
            continue
        if not any(p.search(name) for p in op_names):
            continue
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter):
            continue
        if any(p.search(name) for p in excluded):
            continue
        if head is not None and name == head:
            log.info("pruning: the classifier head %s is not pruned (INC >= 2.2 behaviour)", name)
            continue
        if id(weight) in seen:
            log.warning(
                "pruning: %s shares its weight with %s; it is pruned once, as %s",
                name,
                seen[id(weight)],
                seen[id(weight)],
            )
            continue
        seen[id(weight)] = name
        selected[name] = weight
    return selected
