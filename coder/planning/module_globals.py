"""`global policy` first in a function that re-binds a model it only read from the module.

A function that reads a module-level model (`policy = Policy()` at the top of the script,
`def main(): ... policy(state) ...`) and gets the compressed model re-bound there
(`policy = compression_manager.model`, `policy = quantized_model if ...`) would make
`policy` local to the whole function: every earlier read raises UnboundLocalError, and
the module's other functions would go on with the uncompressed model. Declared global,
the re-binding reaches the module's name, which every function reads.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.index import Index, Scope
from neural_coder.transforms import match as m


def needs_global(index: Index, name: str, scope: Scope) -> bool:
    """`name` is read in the function `scope` from the module: not one of its parameters,
    never assigned there (nor declared global already), and assigned at module level."""
    if not isinstance(scope, cst.FunctionDef) or not name.isidentifier():
        return False
    fn = index.function(scope)
    if fn is None or index.source.enclosing_function(scope) is not None:
        return False  # a closure reads its enclosing function's names
    if name in fn.all_params() or (fn.is_method and name == "self"):
        return False
    if index.assignments_in(name, scope):
        return False
    if any(
        n.name.value == name
        for g in m.findall(scope.body, m.Global())
        for n in g.names  # type: ignore[attr-defined]
    ):
        return False
    return bool(index.assignments_in(name, index.source.module))


def first_statement(scope: cst.FunctionDef) -> cst.BaseStatement:
    """The statement a `global` declaration goes before: the first of the body after a
    docstring (which must stay first to remain the docstring)."""
    body = list(scope.body.body)  # type: ignore[union-attr]
    first = body[0]
    if (
        len(body) > 1
        and isinstance(first, cst.SimpleStatementLine)
        and isinstance(first.body[0], cst.Expr)
        and isinstance(first.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    ):
        return body[1]
    return first
