"""The condition under which a shared train/eval step trains.

One step serves training and evaluation in many scripts: `for phase in ["train", "val"]`
with `if phase == "train": loss.backward(); optimizer.step()` (the transfer-learning
tutorial), `run_epoch(model, loader, optimizer=None, train=True)` with `if train: ...`,
`def step(batch, is_train)` called from the training and the validation loop. The
backward and the optimizer step sit under a test that does not change within the step;
the hooks that run on every batch (`on_step_begin`, `on_step_end`, the distillation loss)
must run under the same test, or evaluation batches count as training steps and run the
teacher.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m
from neural_coder.transforms.tree import iter_nodes

from .expressions import free_names, names_in, substitute
from .flag_paths import certainly_true, skips_before
from .index import Index
from .loop_types import TrainingLoop

# a test that runs code (a call, `await`, a walrus) would run again at each hook
_ACTIVE = (cst.Call, cst.Await, cst.NamedExpr, cst.Yield, cst.Lambda)


@dataclass
class TrainOnly:
    """`test` holds on training steps only. `step_test` is it as the step loop reads it
    (None where every batch of the step loop trains: `step(batch, True)` in a loop of
    its own); `branch` is the `if` whose branch holds the backward, in its scope."""

    test: str
    branch: cst.If
    step_test: str | None


def train_only(index: Index, loop: TrainingLoop) -> TrainOnly | None:
    """The test that guards the backward and every optimizer step of `loop`, where it
    cannot change within a step; None where the step trains on every batch."""
    steps = [loop.optimizer_step, *loop.other_steps]
    region = _region(index, loop)
    bound = _bound_names(region)
    src = index.source
    tests: list[str] = []
    outermost: cst.If | None = None
    child: cst.CSTNode = loop.backward
    for ancestor in src.ancestors(loop.backward):
        if ancestor is region:
            break
        if isinstance(ancestor, cst.Else) and isinstance(src.parent(ancestor), cst.If):
            child = ancestor
            continue
        if isinstance(ancestor, cst.IndentedBlock):
            # `if not train: continue` before the backward
            for skip in skips_before(ancestor, child):
                test = _invariant(skip, bound, src.code, negated=True)
                if test is not None:
                    tests.insert(0, test)
                    outermost = src.parent(skip)  # type: ignore[assignment]
        if isinstance(ancestor, cst.If) and (child is ancestor.body or child is ancestor.orelse):
            test = _invariant_test(ancestor, child is ancestor.body, bound, src.code)
            same_scope = [s for s in steps if index.scope_of(s) is loop.backward_scope]
            if test is not None and all(_inside(src, s, child) for s in same_scope):
                tests.insert(0, test)
                outermost = ancestor
        child = ancestor
    if outermost is None:
        return None
    test = tests[0] if len(tests) == 1 else " and ".join(f"({t})" for t in tests)
    return TrainOnly(test, outermost, _at_step_loop(index, loop, test))


def _region(index: Index, loop: TrainingLoop) -> cst.CSTNode:
    """Where the test must hold still: the step loop, or the function holding the
    backward where the step loop calls it."""
    if loop.backward_scope is loop.step_scope:
        return loop.step_loop
    return loop.backward_scope


def _bound_names(region: cst.CSTNode) -> set[str]:
    targets: Iterable[cst.CSTNode] = [
        *(a.target for a in m.findall(region, m.AssignTarget())),  # type: ignore[union-attr]
        *(a.target for a in m.findall(region, m.AugAssign() | m.AnnAssign())),  # type: ignore[union-attr]
        *(f.target for f in m.findall(region, m.For() | m.CompFor())),  # type: ignore[union-attr]
        *(a.name for a in m.findall(region, m.AsName())),  # type: ignore[union-attr]
        *(n.target for n in m.findall(region, m.NamedExpr())),  # type: ignore[union-attr]
    ]
    names = {n.value for target in targets for n in names_in(target)}
    if isinstance(region, cst.For):
        names |= {n.value for n in names_in(region.target)}
    return names


def _invariant_test(branch: cst.If, in_body: bool, bound: set[str], code) -> str | None:  # noqa: ANN001
    if not in_body and isinstance(branch.orelse, cst.If):
        return None  # an `elif` chain: the train branch is not this test's negation alone
    return _invariant(branch.test, bound, code, negated=not in_body)


def _invariant(test: cst.BaseExpression, bound: set[str], code, negated: bool) -> str | None:  # noqa: ANN001
    """`test` (or its negation) as text, where nothing in the step changes it."""
    if _active(test) or free_names(test) & bound:
        return None
    if not negated:
        return code(test)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return code(test.expression)
    return f"not ({code(test)})"


def _inside(src, node: cst.CSTNode, block: cst.CSTNode) -> bool:  # noqa: ANN001
    return any(a is block for a in src.ancestors(node))


def _at_step_loop(index: Index, loop: TrainingLoop, test: str) -> str | None:
    """`test` (in the backward's function) as the step loop reads it, through the calls
    between: parameters replaced by the arguments the calls pass. None where it is
    certainly true there (`step(batch, True)` in a training loop of its own), or where
    it cannot be told (then every batch of the step loop runs the hooks, as before)."""
    if loop.backward_scope is loop.step_scope:
        return test
    for hop in loop.hops:  # innermost first
        if certainly_true(index, hop.function, hop.call, test):
            return None
        arguments = index.bind_arguments(hop.call, hop.function)
        params = {p.name.value for p in _params(hop.function.node)}
        needed = free_names(cst.parse_expression(test)) & params
        if any(name not in arguments for name in needed):
            return None
        test = substitute(test, {n: index.source.code(arguments[n]) for n in needed})
        if index.scope_of(hop.call) is loop.step_scope:
            expr = cst.parse_expression(test)
            if free_names(expr) & _bound_names(loop.step_loop) or _active(expr):
                return None
            return test
    return None


def _active(expr: cst.CSTNode) -> bool:
    return any(isinstance(node, _ACTIVE) for node in iter_nodes(expr))


def _params(fn: cst.FunctionDef) -> list[cst.Param]:
    p = fn.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]
