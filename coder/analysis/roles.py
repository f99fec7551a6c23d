"""Which of several models a training loop trains, and which one teaches.

Teacher-student scripts call two models before the loss. The trained one is the
model whose parameters the optimizer updates (`SGD(student.parameters())`, param
groups, an `nn.ModuleList` of trainable parts); a model run under `torch.no_grad()`
(or not updated by the optimizer) is a teacher, not a second model to compress.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
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
    """The calls of the trained model and of the teacher, or None when it cannot be
    told: the trained model is the one `optimizer` updates, and every other model must
    be frozen (no optimizer of the file updates it, or it runs under no_grad). Two
    models that optimizers update (a GAN's generator and discriminator) are ambiguous."""
    src = index.source
    updated = optimized_leaves(index, optimizer, scope)
    trained = [c for c in calls if _leaf_ids(index, c.func, scope) & updated]
    if len({src.code(c.func) for c in trained}) != 1:
        return None
    others = [c for c in calls if src.code(c.func) != src.code(trained[0].func)]
    every_updated = all_optimized_leaves(index)
    frozen = all(
        under_no_grad(index, c) or not (_leaf_ids(index, c.func, scope) & every_updated)
        for c in others
    )
    if not frozen:
        return None
    teachers = others if len({src.code(c.func) for c in others}) == 1 else []
    return Roles(trained, teachers)


def all_optimized_leaves(index: Index) -> set[int]:
    """The models any optimizer built in the file updates."""
    ids: set[int] = set()
    for call in index.calls:
        if kinds.is_optimizer(index, call):
            ids |= _updated_by(index, call, index.scope_of(call))
    return ids


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
        if isinstance(leaf, cst.Call):
            ids |= _updated_by(index, leaf, where)
    return ids


def _updated_by(index: Index, construction: cst.Call, scope: Scope) -> set[int]:
    """The models whose parameters the optimizer built by `construction` updates."""
    if not construction.args:
        return set()
    params = next(
        (a for a in construction.args if a.keyword and a.keyword.value == "params"),
        construction.args[0],
    )
    ids: set[int] = set()
    for owner in _parameter_owners(index, params.value, scope, depth=0):
        ids |= _leaf_ids(index, owner, scope)
        ids |= _container_members(index, owner, scope)
        # `encoder.linear.parameters()`: a part of `encoder` trains, so `encoder` is no
        # frozen model (a captioning encoder whose head is trained with the decoder)
        while isinstance(owner, cst.Attribute):
            owner = owner.value
            ids |= _leaf_ids(index, owner, scope)
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
