"""Batches from the script's own batch function, where no DataLoader is in reach.

nanoGPT-style scripts never build a DataLoader: the training loop calls a function
(`X, Y = get_batch('train')`) or a loader object's method (`x, y =
train_loader.next_batch()`) and hands the result to the model (`model(X, Y)`). A fit
after training can take its calibration (or bf16 timing) batches from the same call,
made again at the fit: `((get_batch('val'),) for _ in range(N))`, read lazily by the
fit, so only the batches it needs are drawn. Each batch is shaped so that the runtime
(runtime/batches.py `forward_inputs` / `call_model`) calls the model the way the loop
does: `model(X, Y)` gets `(get_batch(..),)` (a 1-tuple holding the whole result, passed
as positional arguments), `model(X)` gets `get_batch(..)[0]`. A held-out split
(`get_batch('val')`, `val_loader.next_batch()`) is preferred when the script makes such
a call; else the training call's arguments. The function, its object and its arguments
must be bound at the fit, not only inside the loop; `feed` says why not otherwise.

Inputs passed by keyword (`model(X, targets=Y)`, `model(idx=X, targets=Y)`,
`model(input_ids=x, labels=y)`) are fed as a dict batch, which the runtime passes as
keyword inputs: `({"idx": X, "targets": Y} for X, Y in (get_batch('val') for _ in
range(N)))`; a positional input is then named by the model's `forward`
(forward_signature.py). Literal keywords (`return_logits=False`) are left to the
forward's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .expressions import free_names, unmoved
from .forward_signature import keyword_batch
from .index import Assignment, Index, Scope, enclosing_loop, unwrap_pass_through
from .loaders import is_held_out
from .loop_types import TrainingLoop
from .saved_output import in_reach


@dataclass
class Feed:
    call: str  # the batch call made at the fit: "get_batch('val')"
    item: str  # one batch as the fit reads it: "(get_batch('val'),)"
    at: int  # the line of the script's call it copies
    why: str  # "the held-out call at line 222" / "the training call at line 250"
    # `X, Y`: the item is built from the call's result unpacked so (`{"idx": X, ...}`)
    unpack: str | None = None

    def loader(self, count: int) -> str:
        if self.unpack is not None:
            return f"({self.item} for {self.unpack} in ({self.call} for _ in range({count})))"
        return f"({self.item} for _ in range({count}))"

    def describe(self) -> str:
        """`(get_batch('val'),)`; `{"idx": X, "targets": Y} from X, Y = get_batch('val')`."""
        if self.unpack is not None:
            return f"{self.item} from {self.unpack} = {self.call}"
        return self.item


class NoFeed(Exception):
    """A batch function is there, but the fit cannot call it; the message says why."""


def feed(index: Index, loop: TrainingLoop, scope: Scope, line: int) -> Feed | None:
    """The batches a fit at `line` of `scope` can draw from the call that gives the
    training loop's model its inputs; None when the model's inputs come from no call;
    raises NoFeed when the call is there but cannot be made at the fit."""
    src = index.source
    call = loop.model_call
    if call is None or not call.args:
        return None
    # `model(X.to(device))`: the batch item itself (the runtime moves it)
    args = [a.with_changes(value=unmoved(a.value)) for a in call.args]
    positional = [a for a in args if a.keyword is None]
    # `return_logits=False`: a literal the fit leaves to the forward's default
    keywords = [a for a in args if a.keyword is not None and not is_literal(a.value)]
    if any(a.star or not isinstance(a.value, cst.Name) for a in positional):
        return None
    first = (
        positional[0]
        if positional
        else next((k for k in keywords if isinstance(k.value, cst.Name)), None)
    )
    if first is None:
        return None
    source = _batch_assignment(index, first.value.value, loop)  # type: ignore[attr-defined]
    if source is None or not _batch_like(index, source):
        return None
    batch_call = source.value
    assert isinstance(batch_call, cst.Call)
    if keywords:
        item, unpack = (
            _keyword_item(index, positional, keywords, source, loop),
            _unpacked(index, source),
        )
    else:
        item, unpack = _item_shape(index, positional, source, loop.step_scope, call), None
    for candidate, original, why in _candidates(index, batch_call):
        try:
            text = _call_at_fit(index, candidate, scope, line)
        except NoFeed:
            if candidate is batch_call:
                raise
            continue
        shaped = item if unpack is not None else item.format(call=text)
        return Feed(text, shaped, src.line(original), why, unpack)
    return None  # pragma: no cover - the training call is the last candidate


def _keyword_item(
    index: Index,
    positional: list[cst.Arg],
    keywords: list[cst.Arg],
    source: Assignment,
    loop: TrainingLoop,
) -> str:
    """`{"idx": X, "targets": Y}` for `model(X, targets=Y)`: the runtime passes a dict
    batch as keyword inputs (runtime/batches.py `call_model`) and has no batch that mixes
    positional and keyword inputs, so the positional ones are named by the model's
    `forward`. Every input must be an item of what `source` unpacks."""
    src = index.source
    call = loop.model_call
    assert call is not None
    items = (
        set(_tuple_targets(source.statement)) if source.position is not None else {source.target}
    )
    for arg in (*positional, *keywords):
        if not (isinstance(arg.value, cst.Name) and arg.value.value in items):
            raise NoFeed(
                f"the model call at line {src.line(call)} passes "
                f"{src.code(arg).rstrip(', ')}, which is not an item of what line "
                f"{src.line(source.statement)} unpacks, so a batch cannot carry it"
            )
    batch = keyword_batch(index, call, positional, keywords, loop.step_scope)
    if batch is None:
        shown = ", ".join(src.code(a.value) for a in positional)
        raise NoFeed(
            f"the model call at line {src.line(call)} passes {shown} by position and "
            f"{', '.join(src.code(k).rstrip(', ') for k in keywords)} by keyword; a batch "
            "is fed either way, not both, and the forward of "
            f"{src.code(call.func)} (a class of the project) was not found to name "
            f"{shown}: pass every input by keyword"
        )
    return batch


def _unpacked(index: Index, source: Assignment) -> str:
    """`X, Y` of `X, Y = get_batch("train")` (`batch` of `batch = ...`)."""
    statement = source.statement
    assign = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        raise NoFeed(f"line {index.source.line(statement)} is no plain assignment to unpack")
    target = assign.targets[0].target
    if isinstance(target, cst.Tuple | cst.List):
        return ", ".join(index.source.code(e).rstrip(", ") for e in target.elements)
    return index.source.code(target)


def _batch_assignment(index: Index, name: str, loop: TrainingLoop) -> Assignment | None:
    """`X, Y = get_batch('train')`: the assignment of `name` from a call in the step's
    scope nearest before the model call (else the last in the step loop: a loop may
    fetch its next batch after the step)."""
    src = index.source
    model_line = src.line(loop.model_call)  # type: ignore[arg-type]
    found = [
        a
        for a in index.assignments_in(name, loop.step_scope)
        if isinstance(a.value, cst.Call)
        # `x, y = x.to(device), y.to(device)`: the same batch, moved (the fit moves it too)
        and not m.matches(unwrap_pass_through(a.value), m.Name(name))
    ]
    before = [a for a in found if src.line(a.statement) < model_line]
    after = [a for a in found if any(p is loop.step_loop for p in src.ancestors(a.statement))]  # type: ignore[attr-defined]
    chosen = before or after
    return max(chosen, key=lambda a: src.line(a.statement)) if chosen else None


def _batch_like(index: Index, source: Assignment) -> bool:
    """A call that fetches batches: named so (`get_batch`, `next_batch`,
    `sample_minibatch`), or a function of the project whose result is unpacked
    (`x, y = fetch(split)`); not any call that computes the model's input
    (`noisy = scheduler.add_noise(latents, noise, t)`)."""
    call = source.value
    assert isinstance(call, cst.Call)
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else _code(func)
    if "batch" in name.lower():
        return True
    fn = index.resolve_call(call)
    return source.position is not None and fn is not None and fn.cls is None


def _item_shape(
    index: Index,
    positional: list[cst.Arg],
    source: Assignment,
    scope: Scope,
    model_call: cst.Call,
) -> str:
    """The batch template (`{call}` for the call) that calls the model with the items
    the loop passes: the whole result, a prefix of it, or its first item."""
    src = index.source
    names = [a.value.value for a in positional]  # type: ignore[attr-defined]
    if source.position is None:
        if len(names) == 1:
            return "{call}"
        raise NoFeed(f"the model call at line {src.line(model_call)} takes more than the batch")
    targets = _tuple_targets(source.statement)
    if names != targets[: len(names)]:
        raise NoFeed(
            f"the model call at line {src.line(model_call)} passes {', '.join(names)}, not the "
            f"leading items of what line {src.line(source.statement)} unpacks in that order"
        )
    if len(names) == 1:
        return "{call}[0]"
    if len(names) == len(targets):
        return "({call},)"
    return "({call}[:" + str(len(names)) + "],)"


def _tuple_targets(statement: cst.BaseStatement) -> list[str]:
    assign = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    if not isinstance(assign, cst.Assign) or not isinstance(
        assign.targets[0].target, cst.Tuple | cst.List
    ):
        return []
    return [
        e.value.value if isinstance(e.value, cst.Name) else ""
        for e in assign.targets[0].target.elements  # type: ignore[union-attr]
    ]


def _candidates(index: Index, train: cst.Call) -> list[tuple[cst.Call, cst.Call, str]]:
    """The calls the fit may copy (with the script's call each copies), held-out ones
    first, the training call last."""
    src = index.source
    func = train.func
    held_out: list[tuple[cst.Call, cst.Call, str]] = []
    for other in index.calls:
        if other is train or not _same_callee(index, other.func, func):
            continue
        for bound in _bound_variants(index, other):
            if _held_out_call(bound):
                held_out.append((bound, other, f"the held-out call at line {src.line(other)}"))
    return held_out + [(train, train, f"the training loop's call at line {src.line(train)}")]


def _same_callee(index: Index, a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    """`get_batch` and `get_batch`; `val_loader.next_batch` and `train_loader.next_batch`."""
    src = index.source
    if isinstance(a, cst.Attribute) and isinstance(b, cst.Attribute):
        return a.attr.value == b.attr.value and isinstance(a.value, cst.Name)
    return src.code(a) == src.code(b)


def _bound_variants(index: Index, call: cst.Call) -> list[cst.Call]:
    """`get_batch(split)` under `for split in ['train', 'val']`: one call per value of
    the loop variable; other calls as they are."""
    src = index.source
    for i, arg in enumerate(call.args):
        if not isinstance(arg.value, cst.Name):
            continue
        for ancestor in src.ancestors(call):  # type: ignore[attr-defined]
            if isinstance(ancestor, cst.FunctionDef | cst.ClassDef):
                break
            if (
                isinstance(ancestor, cst.For)
                and isinstance(ancestor.target, cst.Name)
                and ancestor.target.value == arg.value.value
                and isinstance(ancestor.iter, cst.List | cst.Tuple)
                and all(is_literal(e.value) for e in ancestor.iter.elements)
            ):
                return [
                    call.with_changes(
                        args=[*call.args[:i], arg.with_changes(value=e.value), *call.args[i + 1 :]]
                    )
                    for e in ancestor.iter.elements
                ]
    return [call]


def _held_out_call(call: cst.Call) -> bool:
    func = call.func
    if isinstance(func, cst.Attribute) and is_held_out(_code(func.value)):
        return True
    return any(
        isinstance(a.value, cst.SimpleString) and is_held_out(a.value.evaluated_value or "")  # type: ignore[arg-type]
        for a in call.args
    )


def _call_at_fit(index: Index, call: cst.Call, scope: Scope, line: int) -> str:
    """The text of `call`, made at `line` of `scope`; NoFeed when its function, object
    or arguments are not bound there (only inside the loop) or may be None."""
    func = call.func
    root = func
    while isinstance(root, cst.Attribute):
        root = root.value
    if not isinstance(root, cst.Name):
        raise NoFeed(f"{_code(func)} is not a name the fit can call")
    if not _bound_at(index, root.value, scope, line):
        raise NoFeed(f"{root.value} (of {_code(call)}) is not bound at line {line}")
    if isinstance(func, cst.Attribute) and _maybe_none(index, root.value, scope):
        raise NoFeed(f"{root.value} may be None at line {line}")
    for arg in call.args:
        if arg.star:
            raise NoFeed(f"{_code(call)} unpacks its arguments")
        value = arg.value
        if is_literal(value):
            continue
        names = [n for n in free_names(value) if n not in ("True", "False", "None")]
        unbound = [n for n in names if not _bound_at(index, n, scope, line)]
        if unbound or not names:
            raise NoFeed(
                f"{_code(call)} reads {', '.join(unbound) or _code(value)}, which only the loop binds"
            )
    return _code(call)


def _bound_at(index: Index, name: str, scope: Scope, line: int) -> bool:
    """`name` is a function of the module, or bound at `line` of `scope` by a statement
    outside any loop (a loop variable, or a value the loop sets, may not be there)."""
    if any(fn.name == name and fn.cls is None for fn in index.functions.values()):
        return True
    if not in_reach(index, name, scope, line):
        return False
    src = index.source
    if name in index.imports_of(scope) or (
        (fn := index.function(scope)) is not None and name in fn.all_params()
    ):
        return True
    module = src.module_of(scope)
    return any(
        src.line(a.statement) < line and enclosing_loop(index, a.statement) is None
        for s in {scope, module}
        for a in index.assignments_in(name, s)
    )


def _maybe_none(index: Index, name: str, scope: Scope) -> bool:
    """`val_loader = None` (then built only under a flag): the object may be missing."""
    module = index.source.module_of(scope)
    return any(
        isinstance(a.value, cst.Name) and a.value.value == "None"
        for s in {scope, module}
        for a in index.assignments_in(name, s)
    )


def is_literal(value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.Name):
        return value.value in ("True", "False", "None")
    if isinstance(value, cst.UnaryOperation):
        return is_literal(value.expression)
    return isinstance(value, cst.SimpleString | cst.Integer | cst.Float)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)
