"""Post-training approaches: a `fit` call after the model exists (after training
when the script trains) and before the model is evaluated; the quantized model
replaces the fp32 one for the rest of the script. `benchmark` measures the model
at the same place.

`eval_func` is built from the script's own evaluation: its call of a function
that takes the model and returns a metric, or `trainer.evaluate()` through the
runtime's `trainer_eval_func` when a Hugging Face Trainer evaluates.

`PostTrainingPlanner.build` chooses the place and emits the fit; its parts:
`post_training_placement` (where the fit goes), `post_training_other_paths` (an
evaluation-only branch, the last epoch), `post_training_eval_func` (the evaluation that
tunes the fit), `post_training_calibration` (the loader it calibrates on),
`post_training_fit_call` (the call, its config and imports) and `post_training_trainer`
(a Hugging Face Trainer).
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from neural_coder.analysis import evaluation, final_model, last_epoch
from neural_coder.analysis.callee_reloads import weights_loaded_by_callee
from neural_coder.analysis.final_model import FinalModel
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from .averaged_copy import averaged_copy_name, averaged_module, ema_copy
from .base import Plan
from .dynamic_layers import refuse_nothing_to_quantize_dynamically
from .float_reloads import FloatInstanceReloads
from .post_training_eval_func import EvalFunc
from .post_training_fit_call import QUANT_APPROACHES
from .post_training_other_paths import OtherFitPaths
from .post_training_placement import FitPlacement
from .post_training_save import SavedFit
from .post_training_trainer import TrainerFit

__all__ = ["QUANT_APPROACHES", "PostTrainingPlanner"]


class PostTrainingPlanner(
    TrainerFit, FitPlacement, OtherFitPaths, SavedFit, EvalFunc, FloatInstanceReloads
):
    #: (the copy, its module) when the fit quantizes a moving average instead of the model
    averaged_names: tuple[str, ...] = ()

    def _averaged_copy_instead(self, place: FinalModel) -> FinalModel:
        """A moving average of the trained model is what such scripts evaluate and save.
        When only the copy is read after training, the fit quantizes the copy's module
        (`ema_model`, `model_ema.module`, `ema.ema`) in its place, so that the script's
        evaluation and save use the quantized average; refused when nothing after training
        reads the copy either (it is evaluated per epoch only), or its module cannot be
        told. A warning when the model itself is read after training too."""
        loop = self.facts.loop
        if loop is None:
            return place
        model = place.model
        call = ema_copy(
            self.index,
            model,
            loop.entry_scope,
            self.src.line(loop.entry_loop),
            loop.frozen_in_entry,
        )
        if call is None:
            return place
        line = self.src.line(call)
        built = f"{self.src.code(call.func)}(...) at line {line}"
        holder = averaged_copy_name(self.index, call)
        if holder is not None and not final_model.later_reads(self.index, place):
            copy_place = FinalModel(holder, place.anchor, place.where, place.scope)
            reads = final_model.later_reads(self.index, copy_place)
            module = averaged_module(self.index, call, holder)
            if reads and module is not None:
                self.plan.placed.append(
                    f"note: {built} keeps a moving average of {model} in {holder}, which the "
                    f"script evaluates or saves after training (line "
                    f"{self.src.line(reads[0])}) instead of {model}: {module} is quantized"
                )
                self.averaged_names = (holder, module)
                anchor, where = place.anchor, place.where
                if self._recomputes_batch_norm(reads[0], holder):
                    anchor, where = reads[0], "after"  # the statistics of the averaged weights
                    self.plan.placed.append(
                        f"note: update_bn at line {self.src.line(anchor)} recomputes the batch "
                        f"norm statistics of {holder}: quantized after it"
                    )
                return FinalModel(module, anchor, where, place.scope, place.notes)
            if reads:
                why = (
                    f"the script reads {holder} there (line {self.src.line(reads[0])}), but "
                    "which of its attributes holds the averaged module cannot be told"
                )
            else:
                during = [
                    self.src.line(e.call)
                    for e in evaluation.find_evaluations(self.index, also=(holder, module or ""))
                    if e.model_arg in (holder, module)
                ]
                if not during:
                    # the copy is only saved beside the model, which the script measures
                    # (deit's epoch loop): the fit quantizes the model, as without a copy
                    return self._warn_the_average_stays_float(call, model, place)
                why = (
                    f"{holder} is evaluated during training only (line {during[0]}), so a "
                    "fit after training would quantize a copy that nothing reads any more"
                )
            saved = f"{module}.state_dict()" if module else f"{holder}'s module state_dict()"
            raise AnalysisError(
                f"{built} keeps a moving average of {model} in {holder}, and nothing after "
                f"training reads {model}: {why}",
                path=self.src.path,
                line=line,
                hint=f"save the averaged weights after training (torch.save({saved}, ...)) "
                "and quantize in a script that loads them into a fresh model, or evaluate "
                f"and save {model} itself",
            )
        return self._warn_the_average_stays_float(call, model, place)

    def _warn_the_average_stays_float(
        self, call: cst.Call, model: str, place: FinalModel
    ) -> FinalModel:
        self.plan.warnings.append(
            f"line {self.src.line(call)}: {self.src.code(call.func)}(...) keeps a moving "
            f"average of {model}, which such scripts evaluate and save: the fit quantizes "
            f"{model} itself, not that copy"
        )
        return place

    def _recomputes_batch_norm(self, statement: cst.BaseStatement, holder: str) -> bool:
        """`update_bn(loader, swa_model)` (torch.optim.swa_utils): part of finishing the
        averaged model, which the fit must follow."""
        return any(
            self.index.qualified(call.func).endswith("swa_utils.update_bn")
            and any(self.src.code(arg.value) == holder for arg in call.args)
            for call in m.findall(statement, m.Call())
        )

    def _evaluations_of_the_copy(self, module: str) -> list[evaluation.Evaluation]:
        """The script's evaluations, with those of the averaged copy or of the object
        that holds it (`evaluate(model_ema)`, whose forward runs `model_ema.module`) as
        evaluations of its module, which the fit's candidate stands for."""
        return [
            dataclasses.replace(e, model_arg=module) if e.model_arg in self.averaged_names else e
            for e in evaluation.find_evaluations(self.index, also=self.averaged_names)
        ]

    def build(self) -> Plan:
        if self.facts.loop is None and self.facts.trainers:
            return self._build_for_trainer(self._evaluated_trainer())
        evaluations = evaluation.find_evaluations(self.index)
        place = self._placement(evaluations)
        if self.quant_approach == "dynamic":
            refuse_nothing_to_quantize_dynamically(self.index, place.model, place.scope)
        self.refuse_peft_weights(place.model, place.scope)
        place = self._averaged_copy_instead(place)
        if self.averaged_names:
            evaluations = self._evaluations_of_the_copy(place.model)
        self._refuse_weights_loaded_after(place)
        if self.quant_approach is not None and self.facts.loop is not None:
            self._warn_float_reload(self.facts.loop, f"ptq-{self.quant_approach}")
        branch = self._evaluation_branch_instead(place, evaluations)
        in_epoch, refused = self._last_epoch_or_refusal(place)
        if branch is not place:
            # an evaluation-only path gets its fit; the training run gets one in its last
            # epoch when it evaluates in each epoch, else one after training that is saved
            self._fit_at(branch, evaluations)
            if in_epoch is not None:
                self._last_epoch_fit_at(in_epoch, evaluations)
            elif self._unsound_save(place) is None:
                self._saved_fit_at(place, evaluations, declined=refused)
            elif refused is not None:
                self.plan.warnings.append(f"the training run is not quantized: {refused.message}")
            return self.plan
        if in_epoch is not None:
            self._last_epoch_fit_at(in_epoch, evaluations)
            return self.plan
        declined = refused  # the last epoch's fit, not sound
        if refused is None:
            try:
                self._check_result_is_used(place)
            except AnalysisError as error:
                refused = error
        if refused is None:
            self._fit_at(place, evaluations)
        elif self._result_unread(place):
            # nothing reads the trained model and no last-epoch fit: fit and save it
            self._refuse_unsound_save(place, refused)
            self._saved_fit_at(place, evaluations, declined)
        else:
            raise refused
        return self.plan

    def _refuse_weights_loaded_after(self, place: FinalModel) -> None:
        """The model is handed, after the fit, to a function that loads weights into it
        (an ensemble of fold checkpoints loaded in turn): those float weights would
        replace the quantized model's."""
        found = weights_loaded_by_callee(self.index, place)
        if found is None:
            return
        line = self.src.line(found.call)
        load = self.src.code(found.load).strip()
        raise AnalysisError(
            f"{found.function.key}() at line {line} loads weights into {place.model} "
            f"(line {self.src.line(found.load)}: {load}) after the fit would run: the float "
            f"weights it loads would replace the compressed model's (an ensemble of "
            "checkpoints loaded into one model in turn)",
            path=self.src.path,
            line=line,
            hint="build one model per checkpoint where the script loads it (model = ...; "
            "model.load_state_dict(...) in the loop over checkpoints, then predict with it): "
            "the fit then follows each load",
        )

    def _last_epoch_or_refusal(
        self, place: FinalModel
    ) -> tuple[last_epoch.LastEpochFit | None, AnalysisError | None]:
        try:
            return self._last_epoch(place), None
        except AnalysisError as refused:
            return None, refused

    def _fit_at(
        self,
        place: FinalModel,
        evaluations: list[evaluation.Evaluation],
        guard: str | None = None,
    ) -> None:
        """The fit at `place` (under `if <guard>:`), tuned with the evaluation there."""
        self.guard = guard
        model = place.model
        found = self._evaluation_for(place, evaluations)
        needs_data = self.reads_batches
        # an evaluation that reads its own data (full-batch tensors, a loader it builds
        # inside) can run the prepared model for calibration where no loader is in reach
        evaluation_calibrates = self.approach != "benchmark" and found is not None
        loader = (
            self._loader(found, place, required=not evaluation_calibrates) if needs_data else None
        )
        calibrate_by_evaluating = needs_data and loader is None
        # the training loop gives the model an input no loader batch holds (masks built
        # per batch): the evaluation, which calls the model as the script does, calibrates
        computed = (
            self._input_computed_in_the_loop(place, found)
            if loader is not None and found is not None and self.quant_approach is not None
            else None
        )
        if computed is not None:
            loader, calibrate_by_evaluating = None, True
        generates = self._evaluates_by_generating(found)
        if self._bf16_needs_a_batch(found is not None and not generates):
            loader = self._loader(found, place, required=False)
            if loader is None and not generates:
                self._refuse_bf16_without_a_batch(place.anchor, place.where)
        eval_func = what = None
        prelude: list[str] = []
        if found is not None:
            chosen, substitutions = found
            eval_func, prelude = self._eval_func(
                chosen, substitutions, place, named=calibrate_by_evaluating
            )
            what = f"{chosen.function.key}() as called at line {self.src.line(chosen.call)}"
            if chosen.key is not None:
                what += f", its {chosen.key!r} entry"
            elif evaluation.returns_a_tuple(chosen.function):
                what += ", its first value"
        better = found is None or evaluation.tuned_higher_is_better(
            self.index, found[0].function, found[0].key, found[0].statement
        )
        self.plan.placed += [f"note: {n}" for n in place.notes]
        self._emit(
            model,
            place.anchor,
            place.where,
            loader,
            eval_func,
            what,
            higher_is_better=better,
            prelude=prelude,
            calibrate_by_evaluating=calibrate_by_evaluating,
            calibration_reason=computed,
        )
