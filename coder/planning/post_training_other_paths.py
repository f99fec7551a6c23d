"""The fit on the paths that evaluate the model other than the end of training: an
evaluation-only branch that returns (`if args.evaluate: validate(...); return`) and the
last epoch of a training loop that evaluates in each epoch (analysis/last_epoch.py).
A part of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import evaluation, final_model, last_epoch
from neural_coder.analysis.final_model import FinalModel
from neural_coder.errors import AnalysisError

from .base import BasePlanner


class OtherFitPaths(BasePlanner):
    """A part of `PostTrainingPlanner` (post_training.py): the evaluation-only branch and
    the last epoch."""

    #: False after training stages, whose end-of-epoch / end-of-training hooks must run first
    last_epoch_fit: bool = True

    def _last_epoch(self, place: FinalModel, quiet: bool = False) -> last_epoch.LastEpochFit | None:
        """The fit in the last epoch, before its evaluation, when nothing after the epoch
        loop reads the model (analysis/last_epoch.py); `quiet`: a refusal becomes a warning."""
        if (
            not self.last_epoch_fit
            or place.rebuilt is not None
            or "." in place.model
            or final_model.later_reads(self.index, place)
        ):
            return None
        try:
            return last_epoch.last_epoch_place(self.index, self.facts.loop, place)
        except AnalysisError as refused:
            if not quiet:
                raise
            self.plan.warnings.append(f"the training run is not quantized: {refused.message}")
            return None

    def _evaluation_branch_instead(
        self, place: FinalModel, evaluations: list[evaluation.Evaluation]
    ) -> FinalModel:
        """Nothing reads the model after training, but the function has an evaluation-only
        path before it (`if args.evaluate: validate(val_loader, model, ...); return`, the
        way such scripts evaluate a `--resume`d checkpoint): the fit goes there, before
        the evaluation, so that run evaluates the quantized model."""
        loop = self.facts.loop
        if loop is None or "." in place.model or final_model.later_reads(self.index, place):
            return place
        start = self.src.line(loop.entry_loop)
        for found in evaluations:
            if (
                found.scope is not place.scope
                or found.model_arg != place.model
                or self.src.line(found.call) >= start
                or not self._returns_after(found.statement, place.scope)
            ):
                continue
            self.plan.placed.append(
                f"nothing reads {place.model} after training (line {self.src.line(place.anchor)}): "
                f"the fit goes on the evaluation-only path, before line "
                f"{self.src.line(found.statement)}, which evaluates {place.model} and returns"
            )
            return FinalModel(place.model, found.statement, "before", place.scope)
        return place

    def _returns_after(self, statement: cst.BaseStatement, scope: cst.CSTNode) -> bool:
        """`statement` is in the body of an `if` (not in a loop) that ends with `return`."""
        child: cst.CSTNode = statement
        for ancestor in self.src.ancestors(statement):
            if ancestor is scope or isinstance(ancestor, cst.For | cst.While):
                return False
            if isinstance(ancestor, cst.If) and child is ancestor.body:
                body = getattr(ancestor.body, "body", ())
                last = body[-1] if body else None
                return isinstance(last, cst.SimpleStatementLine) and isinstance(
                    last.body[-1], cst.Return
                )
            child = ancestor
        return False
