"""Hooks for a training step that runs as a closure: the optimizer's
(`optimizer.step(closure)`, `optimizer.step(partial(self.training_step, ...))`), or the
step function a loop shared by training and validation calls through a variable
(`mini_batch(device, loader, step_fn)` handed `train_step_fn` or `val_step_fn`)."""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.index import enclosing_loop, iter_returns
from neural_coder.analysis.loop_types import Hop
from neural_coder.errors import AnalysisError

from .base import BasePlanner


class ClosureSteps(BasePlanner):
    """A part of `LoopPlanner` (loop.py)."""

    def _hooks_around_a_closure_step(
        self, loop: TrainingLoop, inner_cm: str, cm_of: dict[int, str]
    ) -> None:
        """`optimizer.step(closure)`: the gradients exist only inside the closure, so the
        hook that reads them (on_before_optimizer_step) follows the backward there; the one
        that re-applies masks follows the step call."""
        self.insert(
            loop.backward,
            "after",
            [f"{inner_cm}.callbacks.on_before_optimizer_step()"],
            "on_before_optimizer_step (after the backward, inside the closure the optimizer step runs)",
        )
        step_cm = cm_of[id(self.index.scope_of(loop.optimizer_step))]
        self.insert(
            loop.optimizer_step,
            "after",
            [f"{step_cm}.callbacks.on_after_optimizer_step()"],
            "on_after_optimizer_step",
        )

    def _in_step_loop(self, call: cst.Call, loop: TrainingLoop) -> bool:
        return any(a is loop.step_loop for a in self.src.ancestors(call))

    def _closure_sees_the_manager(self, hop: Hop) -> None:
        """The optimizer calls a closure without arguments: it reads the manager from the
        function it is defined in, which must be the one that runs the step."""
        assert hop.closure_of is not None
        if self.index.scope_of(hop.function.node) is self.index.scope_of(hop.closure_of):
            return
        raise AnalysisError(
            f"{hop.function.key}() runs as the closure of {self.src.code(hop.closure_of.func)}(...) "
            f"at line {self.src.line(hop.closure_of)}, which calls it without arguments, and it "
            "is defined elsewhere, so the compression manager cannot reach its hooks",
            path=self.src.path,
            line=self.src.line(hop.function.node),
            hint="define the closure inside the function that calls optimizer.step(closure), "
            "or pass it with functools.partial(fn, ...)",
        )

    def _step_closure(self, loop: TrainingLoop) -> cst.FunctionDef | None:
        """The training step's function, when the step loop calls it through a variable
        that other paths bind to another step (`step_fn(x, y)` with `step_fn` a parameter
        handed `val_step_fn` too, or chosen by `if validation:`): one call of it is one
        training step, so the per-batch hooks belong in it, not in the shared loop (where
        validation batches would count as steps). None where the loop itself trains, or the
        function may return before its end (it would skip on_step_end)."""
        hop = loop.hops[0] if loop.hops else None
        if (
            hop is None
            or hop.function.node is not loop.backward_scope
            or (hop.factory is None and hop.via is None)
            or hop.closure_of is not None
            or self.index.scope_of(hop.call) is not loop.step_scope
            or enclosing_loop(self.index, hop.call) is not loop.step_loop
        ):
            return None
        fn = hop.function.node
        body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
        if not body:
            return None
        last = body[-1]
        final = (
            last.body[-1]
            if isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], cst.Return)
            else None
        )
        if any(r is not final for r in iter_returns(fn)):
            return None
        return fn

    def _step_hooks_in_closure(self, fn: cst.FunctionDef, cm: str) -> None:
        """on_step_begin first in the step function (after its docstring), on_step_end
        last, before its final `return`."""
        body = list(fn.body.body)  # type: ignore[attr-defined]
        first = body[0]
        if _is_docstring(first) and len(body) > 1:
            first = body[1]
        self.insert(first, "before", [f"{cm}.callbacks.on_step_begin(0)"], "on_step_begin")
        last = body[-1]
        returns = isinstance(last, cst.SimpleStatementLine) and isinstance(
            last.body[-1], cst.Return
        )
        self.insert(
            last, "before" if returns else "after", [f"{cm}.callbacks.on_step_end()"], "on_step_end"
        )
        self.plan.placed.append(
            f"{fn.name.value}() is the training step, called through a variable that validation "
            "binds to another step: the per-batch hooks run inside it, on training batches only"
        )


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )
