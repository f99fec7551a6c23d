"""A loader the fit can build itself, when the only one is built inside a function.

An evaluation written like detectron2's `do_test(cfg, model)` builds its loader inside
(`data_loader = build_detection_test_loader(cfg, dataset_name)`, `dataset_name` running
over `cfg.DATASETS.TEST`), so no loader is in reach where the fit goes. When the builder
is a module-level name and every name its arguments use is
* a parameter the call that reaches the function binds to an expression in reach at the
  fit (names assigned before it in its scope, its function's parameters, module names),
* the target of a loop of the function over such an expression (the first item is
  taken: `next(iter(cfg.DATASETS.TEST))`), or
* a module-level name or a builtin,
the same call, with those values put in, builds the same loader at the fit. A name the
function re-binds before the builder runs (`cfg = cfg.clone()`) makes it give up.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import libcst as cst

from neural_coder.transforms import match as m

from .expressions import free_name_nodes, root_name, substitute
from .index import Function, Index, Scope
from .loaders import loader_built_inside
from .source import Source

_BUILTINS = frozenset(dir(builtins))


def rebuilt_loader(
    index: Index, call: cst.Call, fn: Function, scope: Scope, line: int
) -> tuple[str, cst.CSTNode] | None:
    """The code of a call that builds, at `line` of `scope`, the loader `fn` (reached by
    `call`, a statement of `scope`) builds inside, and that statement; None when it cannot
    be rebuilt there."""
    src = index.source
    statement = loader_built_inside(index, fn.node)
    small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    value = small.value if isinstance(small, cst.Assign | cst.AnnAssign) else None
    if statement is None or not isinstance(value, cst.Call):
        return None
    if src.module_of(fn.node) is not src.module_of(call):
        return None  # the builder's imports are another file's
    module_names = _module_level_names(src.module_of(call))
    head = root_name(value.func)
    if head is None or head not in module_names or _local(index, head, fn):
        return None
    bound = index.bind_arguments(call, fn)
    in_reach = _in_reach(index, scope, line) | module_names | _BUILTINS
    names = _free_names(value.args)
    if names is None:
        return None
    values: dict[str, cst.BaseExpression] = {}
    for name in names:
        loop = _loop_over(src, fn.node, statement, name)
        if loop is None and not _local(index, name, fn):
            if name in module_names or name in _BUILTINS:
                continue
            return None
        if _rebound_before(index, name, fn, statement):
            return None
        if loop is None and name in bound and _plain(bound[name]):
            argument = bound[name]
        elif loop is not None and name not in fn.all_params() and _plain(loop.iter):
            items = _substituted(index, loop.iter, bound, fn, in_reach)
            if items is None:
                return None
            argument = cst.parse_expression(f"next(iter({items}))")
        else:
            return None
        if not set(_free_names(argument) or ["<bound inside>"]) <= in_reach:
            return None
        values[name] = argument
    return _substitute(value, values), statement


def _local(index: Index, name: str, fn: Function) -> bool:
    """Whether `name` is a parameter of `fn` or assigned in it."""
    return name in fn.all_params() or bool(index.assignments_in(name, fn.node))


def _plain(expr: cst.BaseExpression) -> bool:
    """A value read again without side effects or precedence to mind: a name, an
    attribute or item of one, a constant."""
    if isinstance(expr, cst.Attribute):
        return _plain(expr.value)
    if isinstance(expr, cst.Subscript):
        return _plain(expr.value) and all(
            isinstance(e.slice, cst.Index) and _plain(e.slice.value) for e in expr.slice
        )
    return isinstance(expr, cst.Name | cst.SimpleString | cst.Integer | cst.Float)


def _substituted(
    index: Index,
    expr: cst.BaseExpression,
    bound: dict[str, cst.BaseExpression],
    fn: Function,
    in_reach: set[str],
) -> str | None:
    """The code of `expr` (a loop's iterable) with the function's parameters replaced by
    their arguments, or None when it reads a local of the function, or a name neither
    bound nor in reach."""
    values = {}
    for name in _free_names(expr) or ["<bound inside>"]:
        if name in bound and _plain(bound[name]):
            values[name] = bound[name]
        elif _local(index, name, fn) or name not in in_reach:
            return None
    return _substitute(expr, values)


def _substitute(expr: cst.BaseExpression, values: dict[str, cst.BaseExpression]) -> str:
    """The code of `expr` with the names it reads replaced by the code of `values`."""
    code = cst.Module([]).code_for_node
    return substitute(code(expr), {name: code(value) for name, value in values.items()})


def _free_names(nodes: cst.CSTNode | Sequence[cst.CSTNode]) -> list[str] | None:
    """The names `nodes` read, in order (not attribute names nor keyword names); None
    when they hold a lambda or a comprehension, whose own names cannot be told apart."""
    found: list[str] = []
    for node in nodes if isinstance(nodes, Sequence) else [nodes]:
        if m.findall(
            node, m.Lambda() | m.ListComp() | m.SetComp() | m.GeneratorExp() | m.DictComp()
        ):
            return None
        found += [n.value for n in free_name_nodes(node)]  # type: ignore[arg-type]
    return list(dict.fromkeys(found))


def _module_level_names(module: cst.Module) -> set[str]:
    """Names the module binds at its top level (imports, functions, classes, assignments),
    also inside top-level `try` / `if` blocks."""
    names: set[str] = set()
    pending: list[cst.CSTNode] = list(module.body)
    while pending:
        stmt = pending.pop()
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            names.add(stmt.name.value)
        elif isinstance(stmt, cst.Try | cst.If):
            for block in m.findall(stmt, m.SimpleStatementLine()):
                pending.append(block)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                names |= _bound_by(small)
    return names


def _bound_by(small: cst.BaseSmallStatement) -> set[str]:
    if isinstance(small, cst.Import):
        return {
            (a.asname.name.value if a.asname else a.name.value)  # type: ignore[union-attr]
            if a.asname or isinstance(a.name, cst.Name)
            else root_name(a.name) or ""
            for a in small.names
        }
    if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
        return {
            (a.asname.name.value if a.asname else a.name.value)  # type: ignore[union-attr]
            for a in small.names
            if isinstance(a.name, cst.Name)
        }
    if isinstance(small, cst.Assign | cst.AnnAssign):
        targets = small.targets if isinstance(small, cst.Assign) else [small]
        return {t.target.value for t in targets if isinstance(t.target, cst.Name)}  # type: ignore[attr-defined]
    return set()


def _in_reach(index: Index, scope: Scope, line: int) -> set[str]:
    """Names a statement of `scope` at `line` can read: assigned there before it, or the
    parameters of its function."""
    names = {
        target
        for target, assignments in index.assignments.items()
        if "." not in target
        and any(a.scope is scope and index.source.line(a.statement) < line for a in assignments)
    }
    if isinstance(scope, cst.FunctionDef):
        p = scope.params
        extra = [x for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param)]
        names |= {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params, *extra)}
    return names


def _rebound_before(index: Index, name: str, fn: Function, statement: cst.CSTNode) -> bool:
    line = index.source.line(statement)
    return any(index.source.line(a.statement) < line for a in index.assignments_in(name, fn.node))


def _loop_over(
    src: Source, function: cst.FunctionDef, statement: cst.CSTNode, name: str
) -> cst.For | None:
    """The `for name in ...:` of `function` that holds `statement`."""
    for ancestor in src.ancestors(statement):
        if ancestor is function:
            return None
        if isinstance(ancestor, cst.For) and m.matches(ancestor.target, m.Name(name)):
            return ancestor
    return None
