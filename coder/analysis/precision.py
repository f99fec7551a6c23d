"""Mixed precision around the model call: `with torch.autocast(...)`, or a context the
script builds once and enters by name (`ctx = nullcontext() if cpu else
torch.amp.autocast(...)`; `with ctx:`)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .index import Index, Scope


@dataclass
class Autocast:
    call: cst.Call  # the autocast(...) call
    # what switches it: its `enabled=` argument, or the test of the `if` expression that
    # chooses it; None when it is always on
    switch: cst.BaseExpression | None


def autocast_of(index: Index, item: cst.BaseExpression, scope: Scope) -> Autocast | None:
    """The autocast a `with` item enters, directly or through a name bound to it."""
    if isinstance(item, cst.Name):
        module = index.source.module_of(item)
        bound = index.assignments_in(item.value, scope) or index.assignments_in(item.value, module)
        if len(bound) != 1:
            return None
        value = bound[0].value
        if isinstance(value, cst.IfExp):
            for branch in (value.body, value.orelse):
                found = _autocast_call(index, branch)
                if found is not None:
                    return Autocast(found, value.test)
            return None
        item = value
    call = _autocast_call(index, item)
    if call is None:
        return None
    enabled = next((a.value for a in call.args if a.keyword and a.keyword.value == "enabled"), None)
    return Autocast(call, enabled)


def _autocast_call(index: Index, expr: cst.BaseExpression) -> cst.Call | None:
    if isinstance(expr, cst.Call) and index.qualified(expr.func).split(".")[-1] == "autocast":
        return expr
    return None
