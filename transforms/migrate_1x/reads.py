"""Reads of a migrated component that 2.x has no counterpart for.

The 2.x code has no `quantizer` or `scheduler_combination` object to read, so a read
left as it was would name a variable the migrated code no longer has (or has only
later, as the compression manager). Such reads are settled where they stand, so that
the rest of the component still migrates:

- `quantizer.model` (and `quantizer.model.model`): the model the component was given,
  which is what 1.x returns there too (the compressed model is what fit returns);
- a statement that only reads the component (`print(scheduler_combination)`): removed,
  its code kept in the TODO that says so.

Anything else is left for the engine, which keeps that component as 1.x code.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from .analysis import Component, Use
from .codegen import code_of
from .plan import Ctx, unwrap_model

READ_KINDS = ("read", "arg", "escape")


def covered(ctx: Ctx, node: cst.CSTNode, stmt: cst.BaseStatement) -> bool:
    """Does an edit already take care of `node` (in `stmt`)?"""
    if id(stmt) in ctx.frozen:
        return True  # a component left as 1.x code: its TODO says so once
    edit = ctx.stmt_edits.get(stmt)
    if edit is not None and edit.replace is not None:
        return True
    if id(node) in ctx.handled:
        return True
    return any(
        id(anc) in ctx.handled
        or (anc in ctx.stmt_edits and ctx.stmt_edits[anc].replace is not None)
        for anc in ctx.a.ancestors(node)
    )


def pending(ctx: Ctx, use: Use) -> bool:
    """A read no edit rewrites yet."""
    if use.kind == "set" or use.followed:
        return False
    if covered(ctx, use.name, use.stmt):
        return False
    return use.node is None or not (covered(ctx, use.node, use.stmt) or use.node in ctx.expr_edits)


def settle_reads(ctx: Ctx, planned: Sequence[Component]) -> None:
    for top in planned:
        for comp in top.family():
            for use in comp.uses:
                if not pending(ctx, use):
                    continue
                if use.kind == "read" and use.attr == "model" and _model_read(ctx, comp, use):
                    continue
                if use.kind in READ_KINDS and _only_reads(use):
                    text = code_of(use.stmt.body[0])  # type: ignore[attr-defined]
                    ctx.remove(use.stmt)
                    ctx.note(
                        use.stmt,
                        "TODO",
                        f"`{text}` read `{comp.name}`, a 1.x object with no 2.x counterpart; "
                        "the statement was removed",
                    )


def _only_reads(use: Use) -> bool:
    """The statement is one expression (`print(x)`, `logger.info(x)`): nothing binds its value."""
    stmt = use.stmt
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
    )


def _model_read(ctx: Ctx, comp: Component, use: Use) -> bool:
    """`comp.model` -> the model given to the component (a name the read's scope sees)."""
    given = [u for u in comp.uses if u.kind == "set" and u.attr == "model" and u.value is not None]
    if len(given) != 1:
        return False
    model = unwrap_model(given[0].value, ctx)  # type: ignore[arg-type]
    if not isinstance(model, cst.Name) or not use.scope[model.value]:
        return False
    target: cst.CSTNode = use.node  # type: ignore[assignment]
    outer = ctx.a.parent(target)
    if isinstance(outer, cst.Attribute) and outer.value is target and outer.attr.value == "model":
        target = outer  # `quantizer.model.model`: the framework model inside common.Model
    ctx.replace_expr(target, lambda _updated: cst.Name(model.value))
    ctx.handled.add(id(target))
    ctx.note(
        use.stmt,
        "TODO",
        f"`{code_of(target)}` now reads `{model.value}`, the model given to `{comp.name}` "
        "(as in 1.x); the compressed model is the one fit returns",
    )
    return True
