"""A function the model is handed to after the fit, which loads weights into it.

Kaggle-style inference builds one model and hands it, with the folds' state dicts, to a
function that loads each in turn (`inference(model, states, loader)` running
`model.load_state_dict(state["model"])` per fold, even per batch). A fit before that
call would be overwritten by float weights the quantized modules cannot take (a crash,
or the fp32 model run after all), so the post-training planner refuses it.

A trainer class does the same from the other side: `trainer.fit()` trains `self.model`
and keeps the best epoch's checkpoint, and the caller loads it back into `trainer.model`
(itself, or through a method such as `trainer.load_checkpoint(best)`) before its last
evaluation. Training ends after that load, as it does after a reload in the loop's own
function.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .final_model import FinalModel, later_reads
from .index import Function, Index, Scope, unwrap_pass_through
from .weight_loads import binds, loads_weights


@dataclass
class CalleeReload:
    call: cst.Call  # the call that hands the model over: inference(model, states, loader)
    function: Function
    load: cst.BaseStatement  # the statement of the function that loads the weights


def weights_loaded_by_callee(index: Index, place: FinalModel) -> CalleeReload | None:
    """The first call after `place` that hands its model to a function of the project
    which loads weights into that parameter (one call level deep)."""
    if "." in place.model:
        return None
    for statement in later_reads(index, place):
        for call in m.findall(statement, m.Call()):
            assert isinstance(call, cst.Call)
            fn = index.resolve_call(call)
            if fn is None:
                continue
            for param, value in index.bind_arguments(call, fn).items():
                if not m.matches(value, m.Name(place.model)):
                    continue
                for inner in m.findall(fn.node.body, m.SimpleStatementLine()):
                    assert isinstance(inner, cst.SimpleStatementLine)
                    rebinds = any(
                        m.matches(t.target, m.Name(param))
                        for a in m.findall(inner, m.Assign())
                        for t in a.targets  # type: ignore[attr-defined]
                    )  # `model = torch.load(path)` binds the callee's own name anew
                    if not rebinds and loads_weights(index, inner, param, fn.node):
                        return CalleeReload(call, fn, inner)
    return None


@dataclass
class CallerReload:
    """`self.model`, trained in a method (`Trainer.fit`), loaded again by the one caller
    that runs that method, after it returns."""

    receiver: str  # the caller's name for the object: "trainer"
    reload: cst.BaseStatement  # `trainer.model.load_state_dict(...)`, `trainer.load_best()`
    scope: Scope


def reloaded_after_the_method(index: Index, model: str, scope: Scope) -> CallerReload | None:
    """`trainer.fit(); trainer.model.load_state_dict(torch.load(best))` (or a method of the
    class that loads into `self.model`: `trainer.load_checkpoint(best)`), in the block of
    the single call of the method `scope` that trains `model` (`self.model`): the best
    checkpoint the training saved, brought back in the caller."""
    fn = index.function(scope)
    if fn is None or fn.cls is None or not model.startswith("self."):
        return None
    sites = index.call_sites(fn)
    if len(sites) != 1 or not m.matches(sites[0].func, m.Attribute(value=m.Name())):
        return None
    receiver = sites[0].func.value.value  # type: ignore[attr-defined]
    if receiver == "self":
        return None
    caller = index.scope_of(sites[0])
    held = receiver + model[len("self") :]
    names = [held, *_handed_to_the_constructor(index, fn, receiver, model, caller)]
    place = FinalModel(held, index.source.statement_of(sites[0]), "after", caller)
    last = None
    for statement in _following_in_block(index, place, names):
        if binds(statement, receiver):
            break  # another object from here on
        if any(loads_weights(index, statement, name, caller) for name in names) or (
            _loads_through_a_method(index, statement, receiver, model, fn)
        ):
            last = statement
    return CallerReload(receiver, last, caller) if last is not None else None


def _following_in_block(
    index: Index, place: FinalModel, names: list[str]
) -> list[cst.BaseStatement]:
    """The statements after the anchor, in its block, that read the object or one of the
    model's names."""
    found: list[cst.BaseStatement] = []
    for name in names:
        at = FinalModel(name, place.anchor, "after", place.scope)
        found += [s for s in later_reads(index, at) if s not in found]
    parent = index.source.parent(place.anchor)
    return sorted((s for s in found if index.source.parent(s) is parent), key=index.source.line)


def _handed_to_the_constructor(
    index: Index, trained_in: Function, receiver: str, model: str, caller: Scope
) -> list[str]:
    """`model` of `trainer = Trainer(model, loader)` whose `__init__` keeps it as
    `self.model = model.to(device)`: the caller's own name for the same module."""
    init = index.method_of(trained_in.cls, "__init__") if trained_in.cls else None
    if init is None:
        return []
    params = set(index.params_kept_as(init, model))
    names = []
    for a in index.assignments_in(receiver, caller):
        if isinstance(a.value, cst.Call) and index.resolve_call(a.value) is init:
            for param, value in index.bind_arguments(a.value, init).items():
                value = unwrap_pass_through(value)
                if param in params and isinstance(value, cst.Name):
                    names.append(value.value)
    return names


def _loads_through_a_method(
    index: Index, statement: cst.BaseStatement, receiver: str, model: str, trained_in: Function
) -> bool:
    """`trainer.load_checkpoint(best)`: a method of the same class that loads weights into
    `model` (`self.model.load_state_dict(ckpt["model"])`)."""
    for call in m.findall(statement, m.Call(func=m.Attribute(value=m.Name(receiver)))):
        method = index.resolve_call(call)  # type: ignore[arg-type]
        if method is not None and method.cls is trained_in.cls and method is not trained_in:
            if loads_weights(index, method.node.body, model, method.node):
                return True
    return False
