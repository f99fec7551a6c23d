"""Calibration batches from a DataLoader, shaped so the model is called the way the
training loop calls it.

The runtime feeds a dataloader batch to the model by one rule (runtime/batches.py
`forward_inputs`): the first item of a tuple batch (`(x, y)` -> `model(x)`), a dict
batch as keyword inputs without its labels. A loop that calls the model otherwise is
calibrated wrongly or not at all: `for a, b in loader: model(a, b)` (a siamese net; a
GPT given its targets), `for batch in loader: model(batch)` (a forward that unpacks the
batch itself), `model(batch["anchor"])` on dict batches (the dict's keys are no
parameters of the forward). The fit then reads the loader through a generator that
rebuilds the loop's call from each batch: `(((a, b),) for a, b in loader)` (a 1-tuple
holding the positional inputs), or a dict of the keyword inputs (`{"idx": x,
"targets": y}`, a positional one named by the forward). Where the loop's call is the
runtime's own rule, or cannot be rebuilt from the batch alone (an input computed in
the loop, a loop over something else than a loader), the loader is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .batch_function import is_literal
from .expressions import callee_name, unmoved
from .forward_signature import keyword_batch
from .index import Function, Index, Scope
from .loop_types import TrainingLoop

#: wrappers of a loader that yield its batches (`tqdm(loader)`, `enumerate(loader)`)
_PROGRESS = ("tqdm", "track", "progress")


@dataclass
class LoopShape:
    target: str  # the loop's batch target: "a, b", "batch"
    item: str  # one batch as the fit feeds it: "((a, b),)", '{"idx": x, "targets": y}'
    line: int  # the model call it copies

    def loader(self, loader: str) -> str:
        return f"({self.item} for {self.target} in {loader})"


def loop_shape(
    index: Index, loop: TrainingLoop, fit_at: tuple[Scope, int] | None = None
) -> LoopShape | None:
    """How each batch of the training loop's loader must be fed to call the model as the
    loop does; None when the runtime's own rule already does (or the call cannot be
    rebuilt from a batch). `fit_at` (the fit's scope and line): an input the loop computes
    from the batch and names set before the loop there (`inputs = (batch["image"] - mean)
    / std`) is computed so at the fit too."""
    call = loop.model_call
    step = loop.step_loop
    if call is None or not isinstance(step, cst.For):
        return None
    if not any(a is step for a in index.source.ancestors(call)):
        return None  # the model is called in another function (`encode(model, ids)`)
    return call_shape(index, call, step, loop.step_scope, fit_at)


def input_not_from_the_batch(
    index: Index, loop: TrainingLoop, fit_at: tuple[Scope, int] | None = None
) -> tuple[int, str] | None:
    """(line, input) when the training loop calls its model, in the loop over a loader,
    with an input that neither is read from the batch nor can be computed from it at the
    fit (`model(src, tgt_in, src_mask, ...)` after `src_mask = create_mask(src, tgt)`): no
    batch of a loader, fed by any rule, calls the model that way."""
    call = loop.model_call
    step = loop.step_loop
    if call is None or not isinstance(step, cst.For):
        return None
    if not any(a is step for a in index.source.ancestors(call)):
        return None
    return call_input_not_from_the_batch(index, call, step, loop.step_scope, fit_at)


def call_input_not_from_the_batch(
    index: Index,
    call: cst.Call,
    step: cst.For,
    scope: Scope,
    fit_at: tuple[Scope, int] | None = None,
) -> tuple[int, str] | None:
    """(line, input) of the first input of `call`, in `step` (a loop over batches), that no
    batch holds: a state the loop carries from batch to batch (`out, h = model(x, h)`) or
    a value it computes (`create_mask(src, tgt)`)."""
    target = _batch_target(step, index, scope)
    if target is None:
        return None
    names = _target_names(target)
    for arg in call.args:
        if arg.keyword is not None and is_literal(arg.value):
            continue
        value = computed_input(index, unmoved(arg.value), names, scope, step, fit_at)
        if not _from_the_batch(index, value, names, scope, step):
            return index.source.line(call), index.source.code(unmoved(arg.value))
    return None


def loop_call_after(
    index: Index, scope: Scope, model: str, line: int
) -> tuple[cst.Call, cst.For] | None:
    """The first call of `model` itself in `scope` after `line`, in a `for` loop of that
    scope (`for inputs, labels in test_loader: output, h = net(inputs, h)`), and that loop."""
    src = index.source
    for call in index.calls:
        if index.scope_of(call) is not scope or src.line(call) <= line:
            continue
        if not m.matches(call.func, m.Name(model)):
            continue
        step = next(
            (a for a in src.ancestors(call) if isinstance(a, cst.For | cst.FunctionDef)), None
        )
        if isinstance(step, cst.For):
            return call, step
    return None


def evaluation_shape(index: Index, function: Function, model_param: str) -> LoopShape | None:
    """The same for an evaluation function that calls its model parameter in a loop over
    batches (`for a, b in loader: model(a, b)`), for a script with no training loop."""
    found = loop_call_after(index, function.node, model_param, 0)
    return call_shape(index, *found, function.node) if found is not None else None


def call_shape(
    index: Index,
    call: cst.Call,
    step: cst.For,
    scope: Scope,
    fit_at: tuple[Scope, int] | None = None,
) -> LoopShape | None:
    src = index.source
    target = _batch_target(step, index, scope)
    if target is None:
        return None
    names = _target_names(target)
    # `model(x.to(device))`: the batch item itself (the fit moves it)
    args = [
        a.with_changes(value=computed_input(index, unmoved(a.value), names, scope, step, fit_at))
        for a in call.args
        if not (a.keyword is not None and is_literal(a.value))
    ]
    if not args or _double_star_of_batch(args, target):
        return None  # `model(**batch)`: the runtime's rule for a dict batch
    for arg in args:
        if not _from_the_batch(index, arg.value, names, scope, step):
            return None
    line = src.line(call)
    target_text = ", ".join(names) + (
        "," if len(names) == 1 and not isinstance(target, cst.Name) else ""
    )
    if len(args) == 1 and args[0].star == "**":
        # `model(**batch["anchor"])`: that dict, which the runtime passes as keywords
        return LoopShape(target_text, src.code(args[0].value), line)
    if any(a.star for a in args):
        return None
    positional = [a for a in args if a.keyword is None]
    keywords = [a for a in args if a.keyword is not None]
    if not keywords and _runtime_rule(positional, target):
        return None
    if not keywords:
        inputs = ", ".join(src.code(a.value) for a in positional)
        inputs = f"({inputs},)" if len(positional) == 1 else f"({inputs})"
        return LoopShape(target_text, f"({inputs},)", line)
    item = keyword_batch(index, call, positional, keywords, scope)
    # None: the runtime's rule stays (it cannot pass positional and keyword inputs both)
    return LoopShape(target_text, item, line) if item is not None else None


def _batch_target(
    step: cst.For, index: Index, scope: Scope
) -> cst.BaseAssignTargetExpression | None:
    """`a, b` of `for a, b in loader`, `for i, (a, b) in enumerate(loader)`,
    `for a, b in tqdm(loader)` or `for i, batch in pbar` after `pbar =
    tqdm(enumerate(loader))`; None when the loop does not run over a loader name."""
    iterable: cst.BaseExpression | None = _wrapper_bound_to(index, step.iter, scope)
    target = step.target
    enumerated = False
    while isinstance(iterable, cst.Call):
        callee = callee_name(iterable)
        if callee == "enumerate" and not enumerated:
            if not (isinstance(target, cst.Tuple) and len(target.elements) == 2):
                return None
            target = target.elements[1].value  # type: ignore[assignment]
            enumerated = True
        elif not any(p in callee for p in _PROGRESS):
            break
        iterable = _first_arg(iterable)
    if not isinstance(iterable, cst.Name | cst.Attribute):
        return None
    if isinstance(target, cst.Name):
        return target
    if isinstance(target, cst.Tuple | cst.List) and all(
        isinstance(e.value, cst.Name) and not isinstance(e, cst.StarredElement)
        for e in target.elements
    ):
        return target
    return None


def _wrapper_bound_to(
    index: Index, iterable: cst.BaseExpression, scope: Scope
) -> cst.BaseExpression:
    """`tqdm(enumerate(loader), total=...)` for the `pbar` of `for step, batch in pbar`
    when the function binds `pbar` once to a progress bar or enumerate call; else
    `iterable`."""
    if not isinstance(iterable, cst.Name):
        return iterable
    bound = index.assignments_in(iterable.value, scope)
    if len(bound) == 1 and isinstance(bound[0].value, cst.Call):
        callee = callee_name(bound[0].value)
        if callee == "enumerate" or any(p in callee for p in _PROGRESS):
            return bound[0].value
    return iterable


def _first_arg(call: cst.Call) -> cst.BaseExpression | None:
    return call.args[0].value if call.args and call.args[0].keyword is None else None


def _target_names(target: cst.BaseAssignTargetExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    return [e.value.value for e in target.elements]  # type: ignore[attr-defined]


def _double_star_of_batch(args: list[cst.Arg], target: cst.CSTNode) -> bool:
    return (
        len(args) == 1
        and args[0].star == "**"
        and isinstance(target, cst.Name)
        and isinstance(args[0].value, cst.Name)
        and args[0].value.value == target.value
    )


def _from_the_batch(
    index: Index, value: cst.BaseExpression, names: list[str], scope: Scope, step: cst.For
) -> bool:
    """`a` (an item the loop unpacks, not re-bound in the loop but to move it), or
    `batch["input_ids"]` / `batch[0]` / `batch["anchor"]["input_ids"]` of one; or an
    expression `computed_input` rebuilt, whose only names are items and names the fit sees."""
    if isinstance(value, cst.BinaryOperation | cst.UnaryOperation):
        items = [n for n in _read_names(value) if n.value in names]
        return all(_from_the_batch(index, n, names, scope, step) for n in items)
    while isinstance(value, cst.Subscript):
        if len(value.slice) != 1 or not isinstance(value.slice[0].slice, cst.Index):
            return False
        key = value.slice[0].slice.value
        if not isinstance(key, cst.SimpleString | cst.Integer):
            return False
        value = value.value
    if not (isinstance(value, cst.Name) and value.value in names):
        return False
    src = index.source
    for assignment in index.assignments_in(value.value, scope):
        if not any(a is step for a in src.ancestors(assignment.statement)):
            continue
        moved = unmoved(assignment.value)
        if not (isinstance(moved, cst.Name) and moved.value == value.value):
            return False  # `images = list(image.to(device) for image in images)`
    return True


def _runtime_rule(positional: list[cst.Arg], target: cst.CSTNode) -> bool:
    """`for x, y in loader: model(x)` / `for batch in loader: model(batch[0])`: the
    first item of a tuple batch, which is what the runtime feeds."""
    if len(positional) != 1:
        return False
    value = positional[0].value
    if isinstance(target, cst.Tuple | cst.List):
        first = target.elements[0].value
        return isinstance(value, cst.Name) and value.value == first.value  # type: ignore[attr-defined]
    return (
        isinstance(value, cst.Subscript)
        and isinstance(value.slice[0].slice, cst.Index)
        and isinstance(value.slice[0].slice.value, cst.Integer)
        and value.slice[0].slice.value.value == "0"
    )


def computed_input(
    index: Index,
    value: cst.BaseExpression,
    names: list[str],
    scope: Scope,
    step: cst.For,
    fit_at: tuple[Scope, int] | None,
) -> cst.BaseExpression:
    """`inputs` of `inputs = (batch["image"] - mean) / std; model(inputs)`: that arithmetic,
    when it reads only the batch's items and names set once before the loop, in the fit's
    own scope and before it (`mean`, `std`); else `value` as it is."""
    if not isinstance(value, cst.Name) or value.value in names:
        return value
    src = index.source
    inside = [
        a
        for a in index.assignments_in(value.value, scope)
        if any(p is step for p in src.ancestors(a.statement))
    ]
    item = unmoved(inside[0].value) if len(inside) == 1 else None
    if item is not None and inside[0].position is not None:
        # `x, y = batch`: the batch's item at the name's position, not the whole batch
        item = _item_at(item, inside[0].position) if isinstance(item, cst.Name) else None
    if isinstance(item, cst.Subscript | cst.Name) and _from_the_batch(
        index, item, names, scope, step
    ):
        # `ids = data["input_ids"].to(device, dtype=torch.long)`: the batch's item
        return item
    if fit_at is None:
        return value
    if len(inside) != 1 or not isinstance(inside[0].value, cst.BinaryOperation):
        return value
    expression = inside[0].value
    fit_scope, fit_line = fit_at
    for name in _read_names(expression):
        if name.value in names:
            continue
        if fit_scope is not scope:
            return value
        set_at = index.assignments_in(name.value, scope)
        if not set_at or any(
            any(p is step for p in src.ancestors(a.statement)) or src.line(a.statement) >= fit_line
            for a in set_at
        ):
            return value
    return expression


def _item_at(batch: cst.Name, position: int) -> cst.Subscript:
    return cst.Subscript(
        value=batch, slice=[cst.SubscriptElement(cst.Index(cst.Integer(str(position))))]
    )


def _read_names(expression: cst.BaseExpression) -> list[cst.Name]:
    """The names `expression` reads (not attribute or keyword names)."""
    found: list[cst.Name] = []

    class Reads(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.append(node)

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

    expression.visit(Reads())
    return found
