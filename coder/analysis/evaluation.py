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


LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "ppl", "distance", "mse", "mae")
# what a function returns when it hands back predictions or outputs, not a metric
COLLECTIONS = (cst.List, cst.ListComp, cst.Dict, cst.DictComp, cst.GeneratorExp)
TENSOR_BUILDERS = frozenset(
    {"torch.cat", "torch.stack", "torch.concat", "torch.tensor", "np.array"}
)


def higher_is_better(metric: str) -> bool:
    """What a metric's name says: a loss, an error rate, a perplexity go down."""
    return not any(word in metric.lower() for word in LOWER_IS_BETTER)


def returns_metric(index: Index, fn: Function) -> bool:
    """Returns a value, and none of its returns is a collection of predictions
    (`torch.cat(preds)`, `[...]`, a list that is appended to)."""
    values = [r.value for r in iter_returns(fn.node) if r.value is not None]
    if not values or all(_is_none(v) for v in values):
        return False
    return not any(_is_collection(index, fn, v) for v in values)


def _is_collection(
    index: Index, fn: Function, value: cst.BaseExpression, seen: frozenset[str] = frozenset()
) -> bool:
    if isinstance(value, COLLECTIONS):
        return True
    if isinstance(value, cst.Call):
        return index.qualified(value.func) in TENSOR_BUILDERS
    if isinstance(value, cst.Name) and value.value not in seen:  # `a = b; b = a` ends
        return any(
            _is_collection(index, fn, a.value, seen | {value.value})
            for a in index.assignments_in(value.value, fn.node)
        )
    return False


def metric_name(index: Index, fn: Function) -> str:
    """The words that say what `fn` measures: its name and the names it returns."""
    returned = [index.source.code(r.value) for r in iter_returns(fn.node) if r.value is not None]
    return " ".join([fn.name, *returned])


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
        if index.source.module_of(call) is not index.source.module:
            continue  # in a project, the script's own evaluations (of functions of any file)
        fn = index.resolve_call(call)
        if fn is None or fn.cls is not None or not returns_metric(index, fn):
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
