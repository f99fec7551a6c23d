"""Evaluation: a function of the file that takes the model and returns a metric,
and the first place the script calls it (or otherwise uses the model).

Post-training approaches insert their `fit` call before that place, and build
`eval_func` from that call.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from . import kinds
from .index import Function, Index, Scope, iter_returns


@dataclass
class Evaluation:
    call: cst.Call  # e.g. evaluate(model, val_loader)
    function: Function
    model_param: str  # the parameter that receives the model
    model_arg: str  # the argument passed for it at the call, e.g. "model"
    statement: cst.BaseStatement
    scope: Scope


@dataclass
class ModelUse:
    """The model to quantize: where it is built and the loaders in sight."""

    name: str
    statement: cst.BaseStatement  # its (last) assignment before use
    scope: Scope
    loaders: list[str]  # data loaders assigned in the same scope, in order


def returns_value(fn: Function) -> bool:
    return any(r.value is not None and not _is_none(r.value) for r in iter_returns(fn.node))


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def is_model_expression(index: Index, expr: cst.BaseExpression, scope: Scope) -> bool:
    return any(
        kinds.model_kind(index, leaf) is not None for leaf, _ in index.values_of(expr, scope)
    )


def find_evaluations(index: Index) -> list[Evaluation]:
    """Calls of the file's own metric-returning functions with a model argument, in file order."""
    found: list[Evaluation] = []
    for call in index.calls:
        fn = index.resolve_call(call)
        if fn is None or fn.cls is not None or not returns_value(fn):
            continue
        scope = index.scope_of(call)
        for param, arg in index.bind_arguments(call, fn).items():
            if isinstance(arg, cst.Name | cst.Attribute) and is_model_expression(index, arg, scope):
                found.append(
                    Evaluation(
                        call,
                        fn,
                        param,
                        index.source.code(arg),
                        index.source.statement_of(call),
                        scope,
                    )
                )
                break
    found.sort(key=lambda e: index.source.line(e.call))
    return found


def loaders_in(index: Index, scope: Scope, before_line: int) -> list[str]:
    names = []
    for target, assignments in index.assignments.items():
        for a in assignments:
            if a.scope is scope and index.source.line(a.statement) < before_line:
                if any(
                    kinds.is_dataloader(index, leaf)
                    for leaf, _ in index.values_of(a.value, a.scope)
                ):
                    names.append((index.source.line(a.statement), target))
    return [name for _, name in sorted(names)]


def model_assignment(
    index: Index, name: str, scope: Scope, before_line: int
) -> cst.BaseStatement | None:
    candidates = [
        a
        for a in index.assignments_in(name, scope)
        if index.source.line(a.statement) < before_line
        and is_model_expression(index, a.value, a.scope)
    ]
    return (
        max(candidates, key=lambda a: index.source.line(a.statement)).statement
        if candidates
        else None
    )
