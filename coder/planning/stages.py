"""Multi-shot pipelines in a hand-written loop: the stage configs in a `PipelineConfig`
split over the script's epochs (see `neural_coder.runtime.pipeline`)."""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.expressions import BUILTIN_NAMES, free_names
from neural_coder.analysis.index import Scope
from neural_coder.errors import AnalysisError
from neural_coder.transforms import snippets
from neural_coder.transforms.edits import AddImport
from neural_coder.transforms.snippets import Code

from .base import BasePlanner

PIPELINE_MODULE = "neural_coder.runtime.pipeline"


class StagedPlanner(BasePlanner):
    """What a loop planner needs for staged (multi-shot) training, and where a name has
    a value (`_defined_before`), which both use."""

    def _defined_before(
        self,
        expression: str,
        anchor: cst.CSTNode,
        loop: TrainingLoop,
        scope: Scope | None = None,
    ) -> bool:
        """Every name `expression` reads has a value at `anchor` (in `scope`, by default
        the entry scope)."""
        scope = loop.entry_scope if scope is None else scope
        line = self.src.line(anchor)
        fn = self.index.function(scope)
        for name in free_names(cst.parse_expression(expression)):
            local = self.index.assignments_in(name, scope)
            if any(self.src.line(a.statement) < line for a in local):
                continue
            if fn is not None and name in (*fn.all_params(), "self"):
                continue  # a parameter has its value from the start, re-bound later or not
            if local or not (
                name in BUILTIN_NAMES
                or name in self.index.imports_of(scope)
                or self.index.assignments_in(name, self.src.module_of(scope))
            ):
                return False
        return True

    def _pipeline(
        self,
        loop: TrainingLoop,
        cm: str,
        anchor: cst.CSTNode,
        stages: str,
        total_steps: str | None,
        steps_later: str | None,
    ) -> str:
        """The stage configs in a `PipelineConfig` split over the script's epochs. When
        the epoch count (or the run length) is only known between the place the manager
        is prepared and the epoch loop (after `accelerator.prepare`), `fit_pipeline`
        gives it right before the loop."""
        name = self.options.name
        line = self.src.line(loop.entry_loop)
        if loop.epoch_loop is None:
            raise AnalysisError(
                f"{name!r} runs its stages one after another over the epochs of the run, but the "
                f"training loop at line {line} has no epoch loop around its steps",
                path=self.src.path,
                line=line,
                hint="train in an epoch loop (for epoch in range(epochs): ...), or compress in one "
                "shot (--approach " + "+".join(self.options.approach) + ")",
            )
        epochs = later = loop.epochs
        if epochs is not None and not self._defined_before(epochs, anchor, loop):
            epochs = None
        if epochs is not None or not (
            later is not None and self._defined_before(later, loop.entry_loop, loop)
        ):
            later = None
        if epochs is None and later is None and self.options.stage_epochs is None:
            raise AnalysisError(
                f"{name!r} splits the run's epochs over its stages, but the number of epochs of "
                f"the loop at line {line} could not be read where training is prepared",
                path=self.src.path,
                line=line,
                hint="give the split: --stage-epochs "
                + ",".join("1" for _ in self.options.approach)
                + " (one count per training stage)",
            )
        steps_per_epoch = _per_epoch(total_steps, epochs)
        steps_after = _per_epoch(steps_later, epochs or later) if not steps_per_epoch else None
        if (
            steps_per_epoch is None
            and steps_after is None
            and self.options.approach[0] == "pruning"
        ):
            self.plan.warnings.append(
                "the run length could not be read where training is prepared: the pruning "
                "stage's schedule is the configured one (set --end-step to prune gradually)"
            )
        if later is not None or steps_after is not None:
            kwargs: dict[str, object] = {}
            if later is not None and self.options.stage_epochs is None:
                kwargs["epochs"] = Code(later)
            if steps_after is not None:
                kwargs["steps_per_epoch"] = Code(steps_after)
            self.insert(
                loop.entry_loop,
                "before",
                [snippets.call("fit_pipeline", kwargs, args=[Code(cm)])],
                "the pipeline's split fitted to the run",
            )
            self.plan.edits.append(AddImport(PIPELINE_MODULE, "fit_pipeline"))
        split = (
            "the split given (" + ", ".join(map(str, self.options.stage_epochs)) + " epochs)"
            if self.options.stage_epochs is not None
            else f"{epochs or later} epochs split evenly"
        )
        self.plan.placed.append(f"stages {name}: {split}, counted by on_epoch_begin")
        return self.pipeline_config(stages, epochs, steps_per_epoch)


def _per_epoch(total_steps: str | None, epochs: str | None) -> str | None:
    """The optimizer steps per epoch, from the run's steps and its epoch count."""
    if not total_steps or epochs is None:
        return None
    per_epoch = total_steps.removeprefix(f"{epochs} * ")
    return per_epoch if per_epoch != total_steps else f"max(1, ({total_steps}) // {epochs})"
