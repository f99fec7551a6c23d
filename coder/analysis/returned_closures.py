"""A step function built by a factory and called through the name or attribute it is kept in.

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

The same with a factory function outside a class (the book's chapter-2 style):

    def make_train_step_fn(model, loss_fn, optimizer):
        def perform_train_step_fn(x, y):
            ...; loss.backward(); optimizer.step(); ...
        return perform_train_step_fn

    train_step_fn = make_train_step_fn(model, loss_fn, optimizer)
    for x_batch, y_batch in train_loader:
        loss = train_step_fn(x_batch, y_batch)      # or handed to a loop function

The closure reads the factory's parameters, bound once by the factory call: the manager
reaches it as one more parameter of the factory, and the model it trains is the one
the factory call passes (so QAT prepares the model before that call).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.errors import AnalysisError
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


@dataclass
class FactoryClosure:
    call: cst.Call  # `train_step_fn(x, y)`, or `step_fn(x, y)` in the loop function it is handed to
    factory_call: cst.Call  # `make_train_step_fn(model, loss_fn, optimizer)`
    factory: Function
    binding: cst.BaseStatement  # `train_step_fn = make_train_step_fn(...)`
    holder: str  # `train_step_fn`


def factory_closure_call(index: Index, fn: Function) -> FactoryClosure | None:
    """The one call of the closure `fn`, returned by a function outside a class whose one
    call binds a plain name: a call of that name in the binding's scope, or of the
    parameter of a function of the file that the name is handed to."""
    src = index.source
    maker_node = src.enclosing_function(fn.node)
    maker = index.function(maker_node) if maker_node is not None else None
    if maker is None or maker.cls is not None or fn.cls is not None:
        return None
    if not any(m.matches(r.value, m.Name(fn.name)) for r in _returns(maker_node)):
        return None
    bindings = [
        a
        for assignments in index.assignments.values()
        for a in assignments
        if isinstance(a.value, cst.Call)
        and index.resolve_call(a.value) is maker
        and a.position is None
        and "." not in a.target
    ]
    sites = index.call_sites(maker)
    if len(sites) > 1 and bindings:
        raise AnalysisError(
            f"{fn.key}() holds the training step and {maker.key}() builds it at several "
            f"places (lines {', '.join(str(src.line(c)) for c in sites)}): which one trains "
            "the model cannot be told",
            path=src.path,
            line=src.line(sites[0]),
            hint=f"call {maker.key}() once for the training step (a warm-up or a second "
            "model gets a step function of its own)",
        )
    if len(bindings) != 1 or len(sites) != 1:
        return None
    binding = bindings[0]
    holder = binding.target
    calls = [
        c
        for c in index.calls
        if m.matches(c.func, m.Name(holder)) and index.scope_of(c) is binding.scope
    ]
    for call in index.calls:
        callee = index.resolve_call(call)
        if callee is None or index.scope_of(call) is not binding.scope:
            continue
        for param, value in index.bind_arguments(call, callee).items():
            if m.matches(value, m.Name(holder)):
                calls += [
                    c
                    for c in index.calls
                    if m.matches(c.func, m.Name(param)) and index.scope_of(c) is callee.node
                ]
    if len(calls) != 1:
        return None
    assert isinstance(binding.value, cst.Call)
    return FactoryClosure(calls[0], binding.value, maker, binding.statement, holder)


def _returns(fn: cst.FunctionDef) -> list[cst.Return]:
    return [r for r in iter_returns(fn) if r.value is not None]
