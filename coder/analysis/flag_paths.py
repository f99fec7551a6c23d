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
            if isinstance(ancestor, cst.IndentedBlock) and any(
                _evaluate(test, values) is True for test in skips_before(ancestor, child)
            ):
                return False
            child = ancestor
    return True


def skips_before(block: cst.IndentedBlock, statement: cst.CSTNode) -> list[cst.BaseExpression]:
    """The tests of `if <test>: continue` (or `return`) before `statement` in `block`:
    where one holds, `statement` is not reached (`if not train: continue`)."""
    tests = []
    for sibling in block.body:
        if sibling is statement:
            break
        if (
            isinstance(sibling, cst.If)
            and sibling.orelse is None
            and isinstance(sibling.body, cst.IndentedBlock)
            and len(sibling.body.body) == 1
            and isinstance(only := sibling.body.body[0], cst.SimpleStatementLine)
            and isinstance(only.body[0], cst.Continue | cst.Return)
        ):
            tests.append(sibling.test)
    return tests


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
    # `model.train()` / `model.eval()` before the call: `if model.training:` inside
    params_bound = {
        index.source.code(v): k for k, v in bound.items() if isinstance(v, cst.Name | cst.Attribute)
    }
    names = {p.name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params]}
    for obj, mode in _training_modes_before(index, call).items():
        if obj in params_bound:
            values[f"{params_bound[obj]}.training"] = mode
        elif obj.split(".")[0] not in names:
            values[f"{obj}.training"] = mode
    # `is_train = optimizer is not None`: a local bound once, from the parameters
    for name, assignments in index.assignments.items():
        local = [a for a in assignments if a.scope is fn.node]
        if len(local) == 1 and "." not in name and name not in values:
            value = _evaluate(local[0].value, values)
            if value is not _UNKNOWN:
                values[name] = value
    return values


def _training_modes_before(index: Index, call: cst.Call) -> dict[str, bool]:
    """The mode each module is left in before `call` by `x.train()` / `x.train(False)` /
    `x.eval()` statements in the blocks around it (the nearest one per module)."""
    src = index.source
    modes: dict[str, bool] = {}
    child: cst.CSTNode = src.statement_of(call)
    for ancestor in src.ancestors(child):
        if isinstance(ancestor, cst.IndentedBlock | cst.Module):
            before = []
            for sibling in ancestor.body:
                if sibling is child:
                    break
                before.append(sibling)
            for statement in reversed(before):
                found = _mode_set_by(src, statement)
                if found is not None and found[0] not in modes:
                    modes[found[0]] = found[1]
        if isinstance(ancestor, cst.FunctionDef | cst.ClassDef):
            break
        child = ancestor
    return modes


def _mode_set_by(src, statement: cst.CSTNode) -> tuple[str, bool] | None:  # noqa: ANN001
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    call = small.value if isinstance(small, cst.Expr) else None
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return None
    method = call.func.attr.value
    if method == "eval" and not call.args:
        return src.code(call.func.value), False
    if method == "train":
        if not call.args:
            return src.code(call.func.value), True
        flag = call.args[0].value
        if isinstance(flag, cst.Name) and flag.value in ("True", "False"):
            return src.code(call.func.value), flag.value == "True"
    return None


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
    if isinstance(test, cst.Attribute):  # `model.training`
        return values.get(cst.Module(body=[]).code_for_node(test), _UNKNOWN)
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
