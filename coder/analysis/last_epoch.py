"""A post-training fit inside the epoch loop, before the last epoch's evaluation.

Many scripts (accelerate's nlp example, plain PyTorch `train(); evaluate(model, val)`
per epoch) train and evaluate inside each epoch, and nothing after the loop reads the
model. A fit after the loop would be thrown away; instead it goes into the epoch body,
just before the first statement that reads the model after that epoch's training,
guarded by `if epoch == <last epoch>:`, so that the last evaluation measures the
quantized model. That is sound only when the last iteration surely runs to that
statement after the last training: no `break` / `return` / `continue` that can skip
it (an early stop, a step budget), a `range(...)` the last value of which can be
written, and no training after the evaluation in the body.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms.tree import iter_nodes

from . import evaluation
from .expressions import Loop, free_names, loop_index
from .final_model import FinalModel, later_reads
from .index import Index, enclosing_loop
from .loop_types import TrainingLoop

RANGE_CALLS = frozenset({"range", "trange"})
# operators that bind at least as tightly as `-`: `N * 2 - 1` needs no parentheses
ARITHMETIC = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
)
PROGRESS_WRAPPERS = frozenset({"tqdm", "tqdm.tqdm", "tqdm.auto.tqdm"})


@dataclass
class LastEpochFit:
    place: FinalModel  # the statement of the epoch body the fit goes before
    guard: str  # `epoch == num_epochs - 1`


def last_epoch_place(
    index: Index, loop: TrainingLoop | None, place: FinalModel
) -> LastEpochFit | None:
    """The place before the last epoch's evaluation of the model, when the epoch loop at
    `place` evaluates it after training in each epoch; None when it does not (the caller
    refuses as before); AnalysisError when it does but a fit there would not be sound."""
    src = index.source
    if loop is None or loop.epoch_loop is None or place.where != "after":
        return None
    epoch_loop = loop.epoch_loop
    if place.anchor is not epoch_loop or place.scope is not loop.entry_scope:
        return None
    body = list(epoch_loop.body.body)  # type: ignore[attr-defined]
    training = _training_statement(index, loop, body)
    if training is None:
        return None
    start = body.index(training)
    reads = later_reads(index, FinalModel(place.model, training, "after", place.scope))
    in_body = [s for s in reads if s in body[start + 1 :] and _evaluates(index, s, place.model)]
    if not in_body:
        return None  # only saved or logged in the loop: no evaluation to measure
    anchor = in_body[0]
    line, where = src.line(anchor), f"the evaluation in the epoch loop at line {src.line(anchor)}"
    refuse = _Refusal(index, line, place.model)
    guard = _last_epoch_guard(index, epoch_loop, refuse)
    _refuse_early_exits(index, loop, epoch_loop, anchor, refuse)
    _refuse_training_after(index, loop, body, body.index(anchor), refuse)
    _refuse_checkpoints_after(index, body[body.index(anchor) :], place.model, refuse)
    epoch = src.code(epoch_loop.target)  # type: ignore[union-attr]
    if isinstance(anchor, cst.If) and _names_in(anchor.test) & {epoch}:
        refuse(
            f"{where} runs only on some epochs ({src.code(anchor.test)}), so the last one "
            "may not evaluate the quantized model"
        )
    found = FinalModel(place.model, anchor, "before", place.scope, list(place.notes))
    found.notes.append(
        f"nothing after the epoch loop at line {src.line(epoch_loop)} reads {place.model}: "
        f"the fit runs in the last epoch ({guard}), before {where}, so that evaluation "
        "measures the compressed model"
    )
    return LastEpochFit(found, guard)


EVALUATION_WORDS = ("eval", "test", "valid", "val_", "score", "accuracy")


def _evaluates(index: Index, statement: cst.BaseStatement, model: str) -> bool:
    """`statement` measures the model: `model.eval()`, a loop under `torch.no_grad()`,
    a call of the script's evaluation (`evaluate(model, val_loader)`), or of a function
    named like one that trains nothing (`test(epoch)` reading the global model)."""
    if m.findall(statement, m.Call(func=m.Attribute(value=m.Name(model), attr=m.Name("eval")))):
        return True
    for call in m.findall(statement, m.Call()):
        name = index.source.code(call.func).rsplit(".", 1)[-1]  # type: ignore[attr-defined]
        if name in ("no_grad", "inference_mode"):
            return True
        fn = index.resolve_call(call)  # type: ignore[arg-type]
        if fn is None:
            # `validate(val_loader, model, criterion)` imported from a library or utils
            hands_model = any(
                m.matches(a.value, m.Name(model))
                for a in call.args  # type: ignore[attr-defined]
            )
            if hands_model and any(w in name.lower() for w in EVALUATION_WORDS):
                return True
            continue
        if evaluation.trains(index, fn):
            continue
        if evaluation.returns_metric(index, fn) or any(
            w in fn.name.lower() for w in EVALUATION_WORDS
        ):
            return True
    return False


class _Refusal:
    def __init__(self, index: Index, line: int, model: str) -> None:
        self.index, self.line, self.model = index, line, model

    def __call__(self, why: str, line: int | None = None) -> None:
        raise AnalysisError(
            f"the quantized model would be thrown away: nothing after the epoch loop reads "
            f"{self.model}, and a fit before the last epoch's evaluation is not sound: {why}",
            path=self.index.source.path,
            line=line or self.line,
            hint=f"evaluate or save {self.model} after the epoch loop (for example "
            f"torch.save({self.model}.state_dict(), path)), then run again",
        )


def _training_statement(
    index: Index, loop: TrainingLoop, body: list[cst.BaseStatement]
) -> cst.BaseStatement | None:
    """The statement of the epoch body that holds the training: the step loop, or the
    call that reaches it (`train_one_epoch(model, ...)`)."""
    inner: cst.CSTNode = loop.step_loop
    if loop.hops:
        inner = loop.hops[-1].call
    return _body_statement(index, inner, body)


def _body_statement(
    index: Index, node: cst.CSTNode, body: list[cst.BaseStatement]
) -> cst.BaseStatement | None:
    if node in body:
        return node  # type: ignore[return-value]
    for ancestor in index.source.ancestors(node):
        if ancestor in body:
            return ancestor  # type: ignore[return-value]
    return None


def _last_epoch_guard(index: Index, epoch_loop: cst.CSTNode, refuse: _Refusal) -> str:
    """`epoch == N - 1` for `for epoch in range(N)` / `range(S, N)` / `tqdm(range(N))`."""
    src = index.source
    if not isinstance(epoch_loop, cst.For):
        refuse(
            f"the epoch loop at line {src.line(epoch_loop)} is a while loop, whose last "
            "iteration cannot be told in advance",
            src.line(epoch_loop),
        )
    assert isinstance(epoch_loop, cst.For)
    if not isinstance(epoch_loop.target, cst.Name):
        refuse(
            f"the epoch loop at line {src.line(epoch_loop)} does not bind one epoch number",
            src.line(epoch_loop),
        )
    iterable = epoch_loop.iter
    if (
        isinstance(iterable, cst.Call)
        and src.code(iterable.func) in PROGRESS_WRAPPERS
        and iterable.args
        and iterable.args[0].keyword is None
    ):
        iterable = iterable.args[0].value
    args = iterable.args if isinstance(iterable, cst.Call) else ()
    if isinstance(iterable, cst.Call) and src.code(iterable.func) == "trange":
        args = tuple(a for a in args if a.keyword is None)  # trange(n, desc="epoch")
    if (
        not isinstance(iterable, cst.Call)
        or src.code(iterable.func) not in RANGE_CALLS
        or not 1 <= len(args) <= 2
        or any(a.keyword is not None or a.star for a in args)
    ):
        refuse(
            f"the epoch loop at line {src.line(epoch_loop)} runs over "
            f"{src.code(epoch_loop.iter)}, not range(N) or range(START, N), so its last "
            "epoch cannot be told",
            src.line(epoch_loop),
        )
    end = args[-1].value
    epoch = epoch_loop.target.value  # type: ignore[attr-defined]
    written = _assigned_in(epoch_loop.body, _names_in(end) | {epoch})
    if written:
        refuse(
            f"the epoch loop at line {src.line(epoch_loop)} changes {', '.join(sorted(written))} "
            "inside its body, so its last epoch cannot be told",
            src.line(epoch_loop),
        )
    if (
        isinstance(end, cst.BinaryOperation)
        and isinstance(end.operator, cst.Add)
        and m.matches(end.right, m.Integer("1"))
    ):
        return f"{epoch} == {src.code(end.left)}"  # range(1, args.epochs + 1)
    if isinstance(end, cst.Integer):
        return f"{epoch} == {int(end.evaluated_value) - 1}"
    text = src.code(end)
    simple = isinstance(end, cst.Name | cst.Attribute | cst.Call | cst.Subscript) or (
        isinstance(end, cst.BinaryOperation) and isinstance(end.operator, ARITHMETIC)
    )
    return f"{epoch} == {text if simple else f'({text})'} - 1"


def _refuse_early_exits(
    index: Index,
    loop: TrainingLoop,
    epoch_loop: cst.CSTNode,
    anchor: cst.BaseStatement,
    refuse: _Refusal,
) -> None:
    """A `return` anywhere in the epoch loop, a `break` of it (early stopping), a
    `continue` of it before the evaluation, or a budget that ends training
    (`if completed_steps >= max_train_steps: break`): the last epoch may not be reached,
    or reach its evaluation, or the budget decides when training ends."""
    src = index.source
    anchor_line = src.line(anchor)
    for node in own_nodes(index, epoch_loop):
        if isinstance(node, cst.Return):
            refuse(f"line {src.line(node)} returns from inside the epoch loop", src.line(node))
        if not isinstance(node, cst.Break | cst.Continue):
            continue
        target = enclosing_loop(index, node)
        if target is epoch_loop:
            if isinstance(node, cst.Break):
                refuse(
                    f"line {src.line(node)} can end the epoch loop early (an early stop)",
                    src.line(node),
                )
            if src.line(node) < anchor_line:
                refuse(
                    f"the continue at line {src.line(node)} can skip the evaluation", src.line(node)
                )
        elif isinstance(node, cst.Break) and target is loop.step_loop:
            _refuse_budget(index, node, loop.step_loop, refuse)
    if not _contains(index, epoch_loop, loop.step_loop):
        # the step loop of `train_one_epoch(...)`: `if step >= max_steps: return` there
        for node in own_nodes(index, loop.step_loop):
            if isinstance(node, cst.Return) or (
                isinstance(node, cst.Break) and enclosing_loop(index, node) is loop.step_loop
            ):
                _refuse_budget(index, node, loop.step_loop, refuse)


def _refuse_budget(index: Index, node: cst.CSTNode, step_loop: Loop, refuse: _Refusal) -> None:
    if _is_budget(node, index, step_loop):
        line = index.source.line(node)
        refuse(
            f"line {line} ends training on a step budget, so the epochs do not tell when "
            "training ends",
            line,
        )


def _is_budget(node: cst.CSTNode, index: Index, step_loop: Loop) -> bool:
    """The `break` sits under `if A >= B` / `if A > B` (a count reaching a limit) where
    A is not the step loop's own index: `if i >= max_batches: break` in
    `for i, batch in enumerate(loader)` caps every epoch alike, which the last epoch's
    evaluation survives."""
    per_epoch = loop_index(step_loop)
    for ancestor in index.source.ancestors(node):
        if isinstance(ancestor, cst.For | cst.While):
            return False
        if not isinstance(ancestor, cst.If):
            continue
        for comparison in m.findall(ancestor.test, m.Comparison()):
            assert isinstance(comparison, cst.Comparison)
            if not any(
                isinstance(t.operator, cst.GreaterThanEqual | cst.GreaterThan)
                for t in comparison.comparisons
            ):
                continue
            counted = free_names(comparison.left)
            if not counted or counted != {per_epoch}:
                return True
    return False


def _refuse_training_after(
    index: Index, loop: TrainingLoop, body: list[cst.BaseStatement], at: int, refuse: _Refusal
) -> None:
    src = index.source
    trains = [loop.step_loop, loop.backward, loop.optimizer_step, *(h.call for h in loop.hops)]
    for statement in body[at:]:
        inside = [t for t in trains if t is statement or _contains(index, statement, t)]
        for call in m.findall(statement, m.Call()):
            fn = index.resolve_call(call)  # type: ignore[arg-type]
            if (fn is not None and evaluation.trains(index, fn)) or m.matches(
                call, m.Call(func=m.Attribute(attr=m.Name("backward")))
            ):
                inside.append(call)
        if inside:
            line = src.line(inside[0])
            refuse(f"training goes on at line {line}, after the evaluation", line)


SAVED_BY = ("state_dict", "save_pretrained")


def _refuse_checkpoints_after(
    index: Index, statements: list[cst.BaseStatement], model: str, refuse: _Refusal
) -> None:
    """A training checkpoint of `model` written from the evaluation on (`torch.save(
    {"state_dict": model.state_dict(), ...})`, also inside a function handed the model or
    reading it as a global): after the fit it would hold int8 weights where a resume, or
    a `--resume` of the best checkpoint into the fp32 model, expects the trained ones."""
    for statement in statements:
        found = _saves(index, statement, {model}, depth=0)
        if found is not None:
            line = index.source.line(found)
            refuse(
                f"line {line} saves the weights of {model} after the evaluation, so the last "
                "epoch's checkpoint would hold the int8 model where resuming (or reloading "
                "the best checkpoint into the fp32 model) expects trained fp32 weights",
                line,
            )


def _saves(index: Index, node: cst.CSTNode, names: set[str], depth: int) -> cst.CSTNode | None:
    """The call in `node` that saves the model known as any of `names` (`m.state_dict()`,
    `m.save_pretrained(d)`, `save(m, path)`), through functions of the project it calls."""
    src = index.source
    names = set(names)
    for assign in m.findall(node, m.Assign()):  # unwrapped = accelerator.unwrap_model(model)
        if _names_in(assign.value) & names:  # type: ignore[attr-defined]
            for target in assign.targets:  # type: ignore[attr-defined]
                if isinstance(target.target, cst.Name):
                    names.add(target.target.value)
    for call in m.findall(node, m.Call()):
        func = call.func  # type: ignore[attr-defined]
        if isinstance(func, cst.Attribute) and func.attr.value in SAVED_BY:
            if _names_in(func.value) & names:
                return call
        handed = {
            src.code(a.value)
            for a in call.args  # type: ignore[attr-defined]
            if isinstance(a.value, cst.Name) and a.value.value in names
        }
        if handed and "save" in src.code(func).rsplit(".", 1)[-1].lower():
            return call
        fn = index.resolve_call(call)  # type: ignore[arg-type]
        if fn is None or depth >= 2:
            continue
        inner = {
            param
            for param, arg in index.bind_arguments(call, fn).items()  # type: ignore[arg-type]
            if isinstance(arg, cst.Name) and arg.value in names
        }
        # a global model the function reads without binding it (`test(epoch)`)
        inner |= {
            n for n in names if n not in fn.all_params() and not index.assignments_in(n, fn.node)
        }
        if inner and _saves(index, fn.node.body, inner, depth + 1) is not None:
            return call
    return None


def _contains(index: Index, outer: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(a is outer for a in index.source.ancestors(node))


def own_nodes(index: Index, loop: cst.CSTNode) -> list[cst.CSTNode]:
    """The nodes of `loop`'s body, not those of functions or classes defined in it."""
    src = index.source
    return [
        node
        for node in iter_nodes(loop.body)  # type: ignore[attr-defined]
        if not any(
            isinstance(a, cst.FunctionDef | cst.ClassDef | cst.Lambda)
            for a in _ancestors_below(src, node, loop)
        )
    ]


def _ancestors_below(src: object, node: cst.CSTNode, top: cst.CSTNode) -> list[cst.CSTNode]:
    out = []
    for ancestor in src.ancestors(node):  # type: ignore[attr-defined]
        if ancestor is top:
            break
        out.append(ancestor)
    return out


def _names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in m.findall(node, m.Name())}  # type: ignore[attr-defined]


def _assigned_in(node: cst.CSTNode, names: set[str]) -> set[str]:
    found = set()
    for target in m.findall(node, m.AssignTarget() | m.AugAssign() | m.AnnAssign()):
        written = target.target  # type: ignore[attr-defined]
        found |= (
            {n for n in _names_in(written) if n in names}
            if isinstance(written, cst.Name | cst.Tuple | cst.List)
            else set()
        )
    for inner in m.findall(node, m.For()):
        found |= {n for n in _names_in(inner.target) if n in names}  # type: ignore[attr-defined]
    return found


def guarded(lines: list[str], guard: str) -> list[str]:
    """`lines` under `if <guard>:`."""
    body = "\n".join(lines).splitlines()
    return [f"if {guard}:", *(f"    {line}" if line else line for line in body)]
