"""The flag a post-training fit's result is read under.

Scripts evaluate (or save) the trained model only when asked: `if args.evaluate:
validate(model)`, `if args.do_eval: ...`. A fit placed before such blocks would quantize
on every run and, with the flags off, throw the result away unread. When every
statement after the fit that reads the model is an `if` whose test is a plain flag,
the fit runs under the same flags (`if args.do_eval or args.do_predict:`): it goes
where the model is read. A read on any other path (an unconditional save, an `else:`
branch) keeps the fit unconditional.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m
from neural_coder.transforms.tree import iter_nodes

from .expressions import free_names
from .final_model import FinalModel, later_reads, reads_in
from .index import Index

# a test that runs code (a call, `await`, a walrus) would run once more at the fit
_ACTIVE = (cst.Call, cst.Await, cst.NamedExpr, cst.Yield, cst.Lambda)


def read_guard(index: Index, place: FinalModel) -> str | None:
    """`args.evaluate` (or `a or b` for several blocks) when every later read of the
    model at `place` is in the body of an `if` whose test is a flag that nothing
    assigns between the fit and that `if`; None otherwise."""
    src = index.source
    around = set(src.ancestors(place.anchor))  # the loop a last-epoch fit is in
    reads = [r for r in later_reads(index, place) if r not in around]
    if not reads:
        return None
    head = place.model.split(".")[0]
    tests: list[str] = []
    for statement in reads:
        if not isinstance(statement, cst.If) or statement.orelse is not None:
            return None  # read unconditionally, or on an `else:` / `elif` path too
        test = statement.test
        if reads_in(test, head) or any(isinstance(n, _ACTIVE) for n in iter_nodes(test)):
            return None
        if _assigned_between(index, place, statement, test):
            return None
        text = src.code(test).strip()
        if text not in tests:
            tests.append(text)
    if len(tests) == 1:
        return tests[0]
    return " or ".join(t if _binds_tighter_than_or(t) else f"({t})" for t in tests)


def _assigned_between(
    index: Index, place: FinalModel, statement: cst.If, test: cst.BaseExpression
) -> bool:
    """A name of `test` is assigned in the scope between the fit and `statement`."""
    src = index.source
    start, end = src.line(place.anchor), src.line(statement)
    # `do_eval = ...`, `args.do_eval = ...`
    names = free_names(test) | {src.code(a) for a in m.findall(test, m.Attribute())}
    return any(
        a.scope is place.scope and start <= src.line(a.statement) < end
        for name in names
        for a in index.assignments.get(name, [])
    )


def _binds_tighter_than_or(text: str) -> bool:
    """`text` needs no parentheses as an operand of `or`."""
    expr = cst.parse_expression(text)
    if isinstance(expr, cst.BooleanOperation):
        return isinstance(expr.operator, cst.And)
    return not isinstance(expr, cst.IfExp)
