"""A step function built by a factory method and called through the attribute it is kept in.

The "step by step" trainer class style:

    def _make_train_step_fn(self):
        def perform_train_step_fn(x, y):
            ...; loss.backward(); self.optimizer.step(); ...
        return perform_train_step_fn

    self.train_step_fn = self._make_train_step_fn()          # in __init__
    ...
    if validation:
        step_fn = self.val_step_fn
    else:
        step_fn = self.train_step_fn
    for x_batch, y_batch in data_loader:
        loss = step_fn(x_batch, y_batch)

The closure reads everything through `self`, so the compression manager reaches it as
`self.compression_manager`; its call site is the call of the attribute (or of a local
name bound to it), and the statement that binds that name tells which path takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .index import Function, Index, iter_returns


@dataclass
class ClosureCall:
    call: cst.Call  # `step_fn(x_batch, y_batch)` / `self.train_step_fn(x, y)`
    via: cst.CSTNode | None  # the statement binding `step_fn = self.train_step_fn`


def returned_closure_call(index: Index, fn: Function) -> ClosureCall | None:
    """The one call of the closure `fn`, returned by a method and kept in `self.<attr>`."""
    src = index.source
    maker_node = src.enclosing_function(fn.node)
    maker = index.function(maker_node) if maker_node is not None else None
    if maker is None or maker.cls is None:
        return None
    if not any(m.matches(r.value, m.Name(fn.name)) for r in _returns(maker_node)):
        return None
    holders = [
        a.target
        for assignments in index.assignments.values()
        for a in assignments
        if a.target.startswith("self.")
        and index.class_of(a.scope) is maker.cls
        and isinstance(a.value, cst.Call)
        and index.resolve_call(a.value) is maker
    ]
    if len(set(holders)) != 1:
        return None
    holder = holders[0]
    found: list[ClosureCall] = []
    for call in index.calls:
        scope = index.scope_of(call)
        if index.class_of(scope) is not maker.cls:
            continue
        text = src.code(call.func)
        if text == holder:
            found.append(ClosureCall(call, None))
            continue
        if not isinstance(call.func, cst.Name):
            continue
        aliases = [a for a in index.assignments_in(text, scope) if src.code(a.value) == holder]
        if len(aliases) == 1:
            found.append(ClosureCall(call, aliases[0].statement))
    return found[0] if len(found) == 1 else None


def _returns(fn: cst.FunctionDef) -> list[cst.Return]:
    return [r for r in iter_returns(fn) if r.value is not None]
