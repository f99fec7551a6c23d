"""A model handed down inside a container: `model_s = module_list[0]` in the training
function, where the caller built `module_list = nn.ModuleList([])` and appended
`model_s` first (the RepDistiller layout: the student first, the teacher last).

The item is the caller's model only when the order is certain: every member up to it
(from the start for `[k]`, from the end for `[-k]`) is added unconditionally, in the
caller's own function, before training starts, and the container is changed no other way.
"""

from __future__ import annotations

import libcst as cst

from .index import Index, Scope, unconditional

ADDS = ("append", "add_module")
OTHER_CHANGES = ("extend", "insert", "pop", "remove", "__setitem__")


def item_index(expr: cst.BaseExpression) -> int | None:
    """`0` of `x[0]`, `-1` of `x[-1]`; None for anything else."""
    if not isinstance(expr, cst.Subscript) or len(expr.slice) != 1:
        return None
    element = expr.slice[0].slice
    if not isinstance(element, cst.Index):
        return None
    value = element.value
    if isinstance(value, cst.Integer):
        return int(value.value)
    if (
        isinstance(value, cst.UnaryOperation)
        and isinstance(value.operator, cst.Minus)
        and isinstance(value.expression, cst.Integer)
    ):
        return -int(value.expression.value)
    return None


def member_at(index: Index, container: str, scope: Scope, position: int, before: int) -> str | None:
    """The name at `position` of the container `container` that `scope` fills before
    line `before`, when that is certain."""
    src = index.source
    members: list[tuple[str | None, bool]] = []  # (name, added unconditionally)
    built = [a for a in index.assignments_in(container, scope) if src.line(a.statement) < before]
    if len(built) != 1 or not isinstance(built[0].value, cst.Call):
        return None
    call = built[0].value
    if call.args:
        initial = call.args[0].value
        if not isinstance(initial, cst.List | cst.Tuple):
            return None
        members += [(_name(e.value), True) for e in initial.elements]
    adds = []
    for c in index.calls:
        func = c.func
        if not (isinstance(func, cst.Attribute) and src.code(func.value) == container):
            continue
        if index.scope_of(c) is not scope:
            continue
        if func.attr.value in OTHER_CHANGES:
            return None
        if func.attr.value in ADDS and c.args and src.line(c) < before:
            adds.append(c)
    for c in sorted(adds, key=src.line):
        members.append((_name(c.args[-1].value), unconditional(index, c, scope)))
    chosen = members[: position + 1] if position >= 0 else members[position:]
    if len(chosen) != (position + 1 if position >= 0 else -position):
        return None
    if not all(always for _, always in chosen):
        return None
    return chosen[-1][0] if position >= 0 else chosen[0][0]


def _name(expr: cst.BaseExpression) -> str | None:
    return expr.value if isinstance(expr, cst.Name) else None
