"""Pruning a model the script also keeps a moving average of (`ema = ModelEMA(model)`:
timm's `ModelEma*`, YOLOv5's `ModelEMA`, torch's `AveragedModel`).

Such scripts evaluate and save the averaged copy, whose weights are averaged from the
model's: pruned positions decay but never reach zero. With the bundled runtime the
plan hands the copy to `compression_manager.track_copy(ema)`, which applies the masks
to it too. That call needs the manager and the copy both bound: right after the
copy is built when the manager exists by then, else next to `prepare_compression`
when the copy is bound on every path there (built at the top level of the function,
or given a default such as `model_ema = None` first).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.analysis.index import Index, Scope

#: compound statements that may skip what they hold (a `with` body always runs)
_CONDITIONAL = (cst.If, cst.For, cst.While, cst.Try, cst.Match, cst.ClassDef, cst.FunctionDef)


@dataclass
class CopyTracking:
    holder: str  # the script's name for the copy (or the object holding it): "ema"
    line: int  # where the copy is built
    after: cst.BaseStatement | None  # insert after this statement; None: with the prepare


def copy_tracking(
    index: Index, call: cst.Call, anchor: cst.CSTNode, scope: Scope
) -> CopyTracking | None:
    """Where `cm.track_copy(<holder>)` goes for the copy that `call` builds, with the
    manager prepared before `anchor` in `scope`; None when no place has both bound."""
    src = index.source
    statement = _statement_of(index, call)
    holder = _assigned_name(src, statement, call) if statement is not None else None
    if statement is None or holder is None:
        return None
    line = src.line(statement)
    if line > src.line(anchor):
        if _unconditional(index, anchor, scope):
            return CopyTracking(holder, line, statement)
        return None
    if _unconditional(index, statement, scope) or any(
        src.line(a.statement) < line and _unconditional(index, a.statement, scope)
        for a in index.assignments_in(holder, scope)
    ):
        return CopyTracking(holder, line, None)
    return None


def _statement_of(index: Index, call: cst.Call) -> cst.SimpleStatementLine | None:
    for ancestor in index.source.ancestors(call):
        if isinstance(ancestor, cst.SimpleStatementLine):
            return ancestor
        if isinstance(ancestor, cst.BaseCompoundStatement):
            return None
    return None


def _assigned_name(src, statement: cst.SimpleStatementLine, call: cst.Call) -> str | None:  # noqa: ANN001
    """`ema = ModelEMA(model)`, `ema = ModelEMA(model) if main else None`, `self.ema = ...`."""
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target, value = small.targets[0].target, small.value
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target, value = small.target, small.value
    else:
        return None
    if isinstance(value, cst.IfExp) and (value.body is call or value.orelse is call):
        value = call
    if value is not call or not isinstance(target, cst.Name | cst.Attribute):
        return None
    return src.code(target)


def _unconditional(index: Index, node: cst.CSTNode, scope: Scope) -> bool:
    """`node` runs whenever `scope` runs: no branch or loop of `scope` around it."""
    for ancestor in index.source.ancestors(node):
        if ancestor is scope:
            return True
        if isinstance(ancestor, _CONDITIONAL):
            return False
    return True
