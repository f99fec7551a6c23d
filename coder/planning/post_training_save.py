"""A fit after training whose result nothing in the script reads: it is saved.

Training scripts often evaluate and checkpoint only inside the training loop (`for
epoch ...: train(epoch); test(epoch)`, a `while True:` iteration loop that breaks at
`max_iters`), so after the loop nothing reads the trained model. Where a fit in the last
epoch is not possible or not sound (analysis/last_epoch.py), the fit goes after the loop,
where the model is final, and the compressed model is written with its own `save(root)`
(runtime/model.py `Model.save`: `root/best_model.pt`, read back by
`neural_coder.runtime.load(root, <float model>)`), under the script's main-process check
when it has one (analysis/saved_output.py). The refusals that stay: a model rebuilt
before anything reads it, a `return` from inside the loop (the fit might never run), a
`while True:` loop nothing breaks. A part of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import final_model, saved_output
from neural_coder.analysis.evaluation import Evaluation
from neural_coder.analysis.final_model import FinalModel
from neural_coder.analysis.index import enclosing_loop
from neural_coder.analysis.last_epoch import LastEpochFit, own_nodes
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from .post_training_fit_call import FitCall

#: what last_epoch.py's refusals say before their reason
LAST_EPOCH_WHY = "is not sound: "


class SavedFit(FitCall):
    """A part of `PostTrainingPlanner` (post_training.py): the fit after training, saved."""

    def _fit_at(
        self, place: FinalModel, evaluations: list[Evaluation], guard: str | None = None
    ) -> None:
        """Declared for the type checker: PostTrainingPlanner (post_training.py) defines it."""
        raise NotImplementedError

    def _result_unread(self, place: FinalModel) -> bool:
        return "." not in place.model and not final_model.later_reads(self.index, place)

    def _refuse_unsound_save(self, place: FinalModel, refused: AnalysisError) -> None:
        """Raise `refused` (the refusal a fit without a save gets) when a fit after the
        training loop would not run on the trained model, or not run at all."""
        unsound = self._unsound_save(place)
        if unsound is None:
            return
        why, at = unsound
        # `line 9 returns from inside ...`: told already by the refusal (of the last epoch)
        if why.startswith("line ") and why.split(" ", 2)[2][:20] in refused.message:
            raise refused
        raise AnalysisError(
            f"{refused.message}; a fit after the training loop, saved, is not sound either: {why}",
            path=refused.path,
            line=refused.line,
            hint=refused.hint,
        ) from None

    def _saved_fit_at(
        self,
        place: FinalModel,
        evaluations: list[Evaluation],
        declined: AnalysisError | None = None,
    ) -> None:
        """The fit at `place`, followed by a save of its result (see `FitCall._emit`);
        `declined`: why the fit is not in the last epoch, before its evaluation."""
        if declined is not None:
            why = declined.message.split(LAST_EPOCH_WHY, 1)[-1]
            self.plan.placed.append(f"note: no fit in the last epoch: {why}")
        line = self.src.line(place.anchor)
        self._plan_save(place, saved_output.main_process_test(self.index, place.scope, line + 1))
        self._fit_at(place, evaluations)
        self.save_to = self.save_guard = None

    def _last_epoch_fit_at(self, in_epoch: LastEpochFit, evaluations: list[Evaluation]) -> None:
        """The fit in the last epoch, before its evaluation (analysis/last_epoch.py),
        followed by a save of its result: nothing after the epoch loop reads the model,
        and the epoch's own checkpoints hold the fp32 weights (a checkpoint after the
        evaluation is refused there), so the compressed model would be measured, then lost."""
        place = in_epoch.place
        line = self.src.line(place.anchor)
        self._plan_save(
            place,
            saved_output.main_process_test(self.index, place.scope, line),
            f"nothing after the epoch loop saves {place.model}: the fit in the last epoch "
            "also saves the compressed model",
        )
        self._fit_at(place, evaluations, in_epoch.guard)
        self.save_to = self.save_guard = None

    def _plan_save(self, place: FinalModel, guard: str | None, why: str | None = None) -> None:
        """Have the next fit (`FitCall._emit`) save its result, under `if <guard>:`, and
        say where (`why`: the reason, when it is not that nothing reads the model after
        the fit's place)."""
        line = self.src.line(place.anchor)
        folder, chosen = (
            (repr(self.options.ptq.save_dir), "--save-dir")
            if self.options.ptq.save_dir is not None
            else saved_output.output_dir(self.index, place.scope, line + 1, self.approach)
        )
        folder, chosen = self.folder_of_each_pass(folder, chosen, place.anchor, place.scope)
        self.save_to, self.save_guard = folder, guard
        why = why or (
            f"nothing after the statement at line {line} in "
            f"{self.index.describe(place.scope)} reads "
            f"{place.model}: the fit follows training and saves the compressed model"
        )
        self.plan.placed.append(
            f"note: {why} to {folder} ({chosen}) as best_model.pt; load it with "
            f"neural_coder.runtime.load({folder}, <the float model>)"
            + (f"; written only where {guard} holds" if guard is not None else "")
        )

    def _unsound_save(self, place: FinalModel) -> tuple[str, int] | None:
        """Why a fit (and save) after training at `place` would not compress the trained
        model, or would not run, and the line that shows it; None when it is sound."""
        if place.rebuilt is not None:
            at = self.src.line(place.rebuilt)
            return f"line {at} builds a new, untrained {place.model} before anything reads it", at
        anchor_line = self.src.line(place.anchor)
        if not saved_output.in_reach(self.index, place.model, place.scope, anchor_line):
            # `F.cross_entropy(model(x), y).backward()` at module level is read as training
            # the class of `model = Net()`: no built model to fit
            return (
                f"{place.model} is not a model built in {self.index.describe(place.scope)}",
                anchor_line,
            )
        loop = self.facts.loop
        if loop is None or place.scope is not loop.entry_scope:
            return "the training loop is not in the function the fit would go in", self.src.line(
                place.anchor
            )
        outer = final_model.outermost_loop(self.index, loop.entry_loop, loop.entry_scope)
        for node in own_nodes(self.index, outer):
            if isinstance(node, cst.Return):
                at = self.src.line(node)
                return f"line {at} returns from inside the training loop", at
        if (
            isinstance(outer, cst.While)
            and m.matches(outer.test, m.Name("True") | m.Integer("1"))
            and not any(
                isinstance(node, cst.Break) and enclosing_loop(self.index, node) is outer
                for node in own_nodes(self.index, outer)
            )
        ):
            at = self.src.line(outer)
            return f"the loop at line {at} never ends (while True with no break)", at
        return None
