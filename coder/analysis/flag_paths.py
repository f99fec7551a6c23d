"""Which call of a function takes the path to its training step, read from flag arguments.

`run_epoch(model, train_loader, optimizer, train=True)` and `run_epoch(model, val_loader,
train=False)` in one epoch loop, where `if train: loss.backward(); optimizer.step()`;
`self._mini_batch(validation=False)` / `self._mini_batch(validation=True)` where
`if validation: step_fn = self.val_step_fn else: step_fn = self.train_step_fn`. The
`if` tests around the step are evaluated with the constants a call site passes (or the
parameter's default): a call for which one of them is certainly false never runs the step.
"""

from __future__ import annotations

import ast

import libcst as cst

from .index import Function, Index

_UNKNOWN = object()


def call_reaches(index: Index, fn: Function, call: cst.Call, nodes: list[cst.CSTNode]) -> bool:
    """False when `call` certainly takes no path through `fn` to every one of `nodes`
    (statements inside `fn`); True when it may."""
    values = _bound_constants(index, fn, call)
    if not values:
        return True
    for node in nodes:
        child: cst.CSTNode = node
        for ancestor in index.source.ancestors(node):
            if ancestor is fn.node:
                break
            if isinstance(ancestor, cst.If):
                wanted = (
                    True if child is ancestor.body else False if child is ancestor.orelse else None
                )
                if wanted is not None:
                    test = _evaluate(ancestor.test, values)
                    if test is not _UNKNOWN and bool(test) is not wanted:
                        return False
            child = ancestor
    return True


def _bound_constants(index: Index, fn: Function, call: cst.Call) -> dict[str, object]:
    """The parameters of `fn` that `call` binds to a literal (or leaves at a literal
    default)."""
    bound = index.bind_arguments(call, fn)
    values: dict[str, object] = {}
    params = fn.node.params
    for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
        name = param.name.value
        expr = bound.get(name, param.default if name not in bound else None)
        if expr is None:
            continue
        value = _literal(index, expr)
        if value is not _UNKNOWN:
            values[name] = value
    return values


def _literal(index: Index, expr: cst.BaseExpression) -> object:
    try:
        return ast.literal_eval(index.source.code(expr))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNKNOWN


def _evaluate(test: cst.BaseExpression, values: dict[str, object]) -> object:
    """The value of a flag test (`train`, `not validation`, `mode == "train"`,
    `optimizer is not None`, and / or of those), or `_UNKNOWN`."""
    if isinstance(test, cst.Name):
        if test.value in values:
            return values[test.value]
        return {"True": True, "False": False, "None": None}.get(test.value, _UNKNOWN)
    if isinstance(test, cst.SimpleString | cst.Integer):
        return ast.literal_eval(test.value)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _evaluate(test.expression, values)
        return _UNKNOWN if inner is _UNKNOWN else not inner
    if isinstance(test, cst.BooleanOperation):
        left, right = _evaluate(test.left, values), _evaluate(test.right, values)
        if isinstance(test.operator, cst.And):
            if (left is not _UNKNOWN and not left) or (right is not _UNKNOWN and not right):
                return False
            return _UNKNOWN if _UNKNOWN in (left, right) else True
        if (left is not _UNKNOWN and left) or (right is not _UNKNOWN and right):
            return True
        return _UNKNOWN if _UNKNOWN in (left, right) else False
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        left = _evaluate(test.left, values)
        target = test.comparisons[0]
        right = _evaluate(target.comparator, values)
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        operator = target.operator
        if isinstance(operator, cst.Equal):
            return left == right
        if isinstance(operator, cst.NotEqual):
            return left != right
        if isinstance(operator, cst.Is):
            return left is right
        if isinstance(operator, cst.IsNot):
            return left is not right
    return _UNKNOWN


def certainly_true(index: Index, fn: Function, call: cst.Call, test: str) -> bool:
    """Whether `test` (an expression over `fn`'s parameters) is true for every run of
    `fn` through `call`, from the constants `call` passes."""
    values = _bound_constants(index, fn, call)
    value = _evaluate(cst.parse_expression(test), values)
    return value is not _UNKNOWN and bool(value)
