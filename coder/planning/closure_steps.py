"""Hooks for a training step that the optimizer runs as its closure
(`optimizer.step(closure)`, `optimizer.step(partial(self.training_step, ...))`)."""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
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
