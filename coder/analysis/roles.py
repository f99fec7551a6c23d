"""Which of several models a training loop trains, and which one teaches.

Teacher-student scripts call two models before the loss. The trained one is the
model whose parameters the optimizer updates (`SGD(student.parameters())`, param
groups, an `nn.ModuleList` of trainable parts); a model run under `torch.no_grad()`
(or not updated by the optimizer) is a teacher, not a second model to compress.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from .index import Index, Scope
from .wraps import values_through_wraps

NO_GRAD = ("no_grad", "inference_mode")
PARAMETER_METHODS = ("parameters", "named_parameters")
CONTAINER_ADDS = ("append", "extend", "add_module")


@dataclass
class Roles:
    trained: list[cst.Call]  # the calls of the model to compress
    teachers: list[cst.Call]  # the calls of a frozen model (one callee)


def split_roles(index: Index, calls: list[cst.Call], scope: Scope, optimizer: str) -> Roles | None:
    """The calls of the trained model and of the teacher, or None when it cannot be told."""
    src = index.source
    updated = optimized_leaves(index, optimizer, scope)
    trained = [c for c in calls if _leaf_ids(index, c.func, scope) & updated]
    if len({src.code(c.func) for c in trained}) != 1:
        trained = [c for c in calls if not under_no_grad(index, c)]
        if len({src.code(c.func) for c in trained}) != 1:
            return None
    teachers = [c for c in calls if src.code(c.func) != src.code(trained[0].func)]
    if len({src.code(c.func) for c in teachers}) != 1 or not all(
        under_no_grad(index, c) or not (_leaf_ids(index, c.func, scope) & updated) for c in teachers
    ):
        teachers = []
    return Roles(trained, teachers)


def under_no_grad(index: Index, node: cst.CSTNode) -> bool:
    """`node` runs inside `with torch.no_grad():` (or `inference_mode`)."""
    for ancestor in index.source.ancestors(node):
        if isinstance(ancestor, cst.With):
            for item in ancestor.items:
                call = item.item
                if isinstance(call, cst.Call) and index.qualified(call.func).endswith(NO_GRAD):
                    return True
        if isinstance(ancestor, cst.FunctionDef):
            return any(
                index.qualified(
                    d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator
                ).endswith(NO_GRAD)
                for d in ancestor.decorators
            )
    return False


def optimized_leaves(index: Index, optimizer: str, scope: Scope) -> set[int]:
    """The models (as leaves of `Index.values_of`) whose parameters `optimizer` updates."""
    ids: set[int] = set()
    for leaf, where in index.values_of(cst.parse_expression(optimizer), scope):
        if not isinstance(leaf, cst.Call) or not leaf.args:
            continue
        params = next((a for a in leaf.args if a.keyword and a.keyword.value == "params"), None)
        params = params or leaf.args[0]
        for owner in _parameter_owners(index, params.value, where, depth=0):
            ids |= _leaf_ids(index, owner, where)
            ids |= _container_members(index, owner, where)
    return ids


def _parameter_owners(
    index: Index, expr: cst.BaseExpression, scope: Scope, depth: int
) -> list[cst.BaseExpression]:
    """`X` of every `X.parameters()` that `expr` reads, following names one level."""
    owners = [
        call.func.value  # type: ignore[attr-defined]
        for call in m.findall(
            expr, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, PARAMETER_METHODS))))
        )
    ]
    if depth < 2:
        for name in m.findall(expr, m.Name()):
            for a in index.assignments_in(name.value, scope):  # type: ignore[union-attr]
                owners += _parameter_owners(index, a.value, scope, depth + 1)
    return owners


def _container_members(index: Index, owner: cst.BaseExpression, scope: Scope) -> set[int]:
    """Models put in a container whose parameters are optimized
    (`trainable = nn.ModuleList([student]); trainable.append(adapter)`)."""
    src = index.source
    text = src.code(owner)
    ids: set[int] = set()
    members: list[cst.BaseExpression] = []
    for a in index.assignments_in(text, scope):
        if isinstance(a.value, cst.Call) and a.value.args:
            members += [e.value for e in m.findall(a.value.args[0], m.Element())]  # type: ignore[union-attr]
    for call in index.calls:
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in CONTAINER_ADDS
            and src.code(func.value) == text
            and call.args
        ):
            members.append(call.args[-1].value)
    for member in members:
        ids |= _leaf_ids(index, member, scope)
    return ids


def _leaf_ids(index: Index, expr: cst.BaseExpression, scope: Scope) -> set[int]:
    return {id(leaf) for leaf, _ in values_through_wraps(index, expr, scope)}
