"""The fit for a Hugging Face Trainer: on `trainer.model`, before the first evaluate() /
predict() after training, calibrated on the Trainer's own loaders and tuned through the
runtime's `trainer_eval_func` on the metric compute_metrics returns. A part of
`PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import final_model
from neural_coder.analysis.evaluation import higher_is_better
from neural_coder.analysis.trainer import TrainerUse
from neural_coder.errors import AnalysisError
from neural_coder.transforms.edits import AddImport

from .base import Plan
from .post_training_calibration import CalibrationData


class TrainerFit(CalibrationData):
    """A part of `PostTrainingPlanner` (post_training.py): a Hugging Face Trainer's fit."""

    def _evaluated_trainer(self) -> TrainerUse:
        uses = self.facts.trainers
        named = [u for u in uses if u.target is not None]
        if not named:
            raise AnalysisError(
                f"the {uses[0].class_name} at line {self.src.line(uses[0].call)} is not assigned to a name",
                path=self.src.path,
                line=self.src.line(uses[0].call),
                hint="assign it first: trainer = Trainer(...)",
            )
        return next((u for u in named if u.eval_calls), named[0])

    def _build_for_trainer(self, use: TrainerUse) -> Plan:
        trainer = use.target
        assert trainer is not None
        self.warn_guessed_trainer(use)
        if use.model is not None:
            self.refuse_peft_weights(self.src.code(use.model), use.scope)
        anchor, where = self._trainer_anchor(use)
        loader = None
        if self.approach == "benchmark" or self.quant_approach in ("static", "auto"):
            loader = self._trainer_loader(use)
        keys, better = self._trainer_metric(use)
        metric = keys[0] if len(keys) == 1 else keys
        if self._bf16_needs_a_batch(use.has_eval_dataset):
            if not use.has_train_dataset:
                self._refuse_bf16_without_a_batch(anchor, where)
            loader = self._trainer_loader(use)
        eval_func = None
        if use.has_eval_dataset and self.approach != "benchmark":
            eval_func = f"trainer_eval_func({trainer}, {metric!r})"
            if use.eval_dataset_optional:
                # a run without eval_dataset= converts once instead of failing in evaluate()
                eval_func += f" if {trainer}.eval_dataset is not None else None"
                self.plan.warnings.append(
                    f"eval_dataset= of the {use.class_name} at line {self.src.line(use.call)} "
                    "may be None: such a run is quantized once, without accuracy tuning"
                )
            self.plan.edits.append(AddImport(self.modules["transformers"], "trainer_eval_func"))
            if len(keys) > 1:
                self.plan.warnings.append(
                    f"compute_metrics returns {' or '.join(keys)} depending on the run: the "
                    "tuning uses the first one trainer.evaluate() holds, and its direction"
                )
        self._emit(
            f"{trainer}.model",
            anchor,
            where,
            loader,
            eval_func,
            f"{trainer}.evaluate()[{' or '.join(repr(k) for k in keys)}]",
            better,
            trainer=trainer,
        )
        return self.plan

    def _trainer_anchor(self, use: TrainerUse) -> tuple[cst.CSTNode, str]:
        """Before the first evaluate()/predict() after training, or before a save_model()
        on the way to it (so the saved model is the quantized one); else after training;
        else right after the Trainer is built."""
        src = self.src
        last_train = max((src.line(c) for c in use.train_calls), default=0)
        evals = [c for c in use.eval_calls if src.line(c) > last_train]
        if evals:
            first_eval = min(evals, key=src.line)
            for save in sorted(use.save_calls, key=src.line):
                if not last_train < src.line(save) < src.line(first_eval):
                    continue
                shared = self._statement_on_the_way(save, first_eval, use.train_calls)
                if shared is not None:
                    return self._outside_loops(shared, use), "before"
                self.plan.warnings.append(
                    f"line {src.line(save)} saves the model before it is quantized (the fit "
                    f"is at line {src.line(first_eval)}, on another branch): move the save "
                    "after it to save the quantized model"
                )
            return self._outside_loops(src.statement_of(first_eval), use), "before"
        if use.train_calls:
            return src.statement_of(max(use.train_calls, key=src.line)), "after"
        return use.statement, "after"

    def _outside_loops(self, statement: cst.BaseStatement, use: TrainerUse) -> cst.BaseStatement:
        """The outermost loop after training around `statement` (`for split, ds in
        eval_sets.items(): trainer.evaluate(ds)`: one fit, not one per evaluation set)."""
        loop = final_model.outermost_loop(self.index, statement, use.scope)
        holds_training = any(
            any(a is loop for a in self.src.ancestors(call)) for call in use.train_calls
        )
        return statement if holds_training else loop

    def _statement_on_the_way(
        self, save: cst.Call, later: cst.Call, train_calls: list[cst.Call]
    ) -> cst.CSTNode | None:
        """The statement holding `save` (`save_model()`, or `if is_world_process_zero():
        save_model()` as a whole) in a block that also holds `later`, so the run passes it
        on the way to `later`; None when `save` is on another branch (`if do_train:` with
        the training) or no such statement exists."""
        src = self.src
        later_ancestors = {id(a) for a in src.ancestors(later)}
        statement: cst.CSTNode = src.statement_of(save)
        while True:
            block = src.parent(statement)
            if block is None:
                return None
            if id(block) in later_ancestors:
                break
            outer = next(
                (a for a in src.ancestors(block) if isinstance(a, cst.BaseStatement)), None
            )
            if outer is None:
                return None
            statement = outer
        holds_training = any(
            any(a is statement for a in src.ancestors(call)) for call in train_calls
        )
        return None if holds_training else statement

    def _trainer_loader(self, use: TrainerUse) -> str:
        if use.has_eval_dataset and use.eval_dataset_optional and use.has_train_dataset:
            return (
                f"{use.target}.get_eval_dataloader() if {use.target}.eval_dataset is not None "
                f"else {use.target}.get_train_dataloader()"
            )
        if use.has_eval_dataset:
            return f"{use.target}.get_eval_dataloader()"
        if use.has_train_dataset:
            return f"{use.target}.get_train_dataloader()"
        raise AnalysisError(
            f"the {use.class_name} at line {self.src.line(use.call)} has no eval_dataset or train_dataset to calibrate with",
            path=self.src.path,
            line=self.src.line(use.call),
            hint="pass eval_dataset= to the Trainer, or use --approach ptq-dynamic",
        )

    def _trainer_metric(self, use: TrainerUse) -> tuple[list[str], bool]:
        """The keys to tune on (one per branch of compute_metrics that returns a different
        first key; the runtime picks the one the run produces) and whether higher is better
        for the first."""
        keys: list[str] = []
        for branch in use.metric_branches:
            key = f"eval_{branch[0]}"
            if key not in keys:
                keys.append(key)
        if keys and use.metric_returns_unread:
            # another branch returns keys the script builds at run time (`--return_entity_level_metrics`):
            # eval_loss, which evaluate() always holds, is the fallback the runtime can pick
            keys.append("eval_loss")
        if keys:
            return keys, higher_is_better(keys[0])
        if use.has_compute_metrics:
            self.plan.warnings.append(
                "the keys compute_metrics returns could not be read from the script: "
                "tuning uses eval_loss (lower is better)"
            )
        return ["eval_loss"], False
