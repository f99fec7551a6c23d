"""Hooks for a hand-written training loop, where DESIGN.md shows them.

The compression manager is prepared right before training starts (the model, the
loader and the epoch count all exist there, so the pruning schedule can be fitted
to the run), or before the statement that wraps the model (`DDP(model)`,
`torch.compile(model)`, `accelerator.prepare(model, ...)`), because the runtime
compresses the bare module. It reaches the functions that hold the loop through a
`compression_manager` parameter (or `self.compression_manager` inside the class).

`LoopPlanner.build` places the hooks; its parts: `loop_preparation` (where the manager
is prepared), `loop_threading` (the manager handed down the training path),
`loop_step_hooks` (hooks inside the step), `closure_steps` and `stages` (pipelines).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop, final_model, saved_output
from neural_coder.analysis.best_checkpoint import best_checkpoint_save
from neural_coder.analysis.callee_reloads import reloaded_after_the_method
from neural_coder.analysis.expressions import early_exits, free_names
from neural_coder.analysis.final_model import FinalModel, weights_reloaded_after
from neural_coder.analysis.index import Scope
from neural_coder.analysis.train_only import train_only
from neural_coder.analysis.wraps import find_wrap, find_wrap_in_class, wrap_anchor
from neural_coder.errors import AnalysisError

from .averaged_copy import (
    MovingAverage,
    copy_tracking,
    ema_copy,
)
from .base import WEIGHT_TECHNIQUES, Plan
from .caller import (
    CallerSite,
    attribute_alias,
    caller_of_parameter,
    refuse_qat_before_a_weight_copy,
    refuse_qat_on_a_constructor_parameter,
    refuse_qat_on_a_container_item,
)
from .loop_preparation import ManagerPreparation
from .loop_step_hooks import StepHooks
from .loop_threading import ManagerThreading
from .schedule_free import refuse_pruning_under_schedule_free


class LoopPlanner(ManagerPreparation, ManagerThreading, StepHooks):
    def build(self) -> Plan:
        loop = self.facts.loop
        if loop is None:
            assert self.facts.loop_error is not None
            raise self.facts.loop_error
        techniques = self.options.approach
        if loop.step_comprehension is not None:
            raise AnalysisError(
                f"the training step runs inside a comprehension "
                f"({self.src.code(loop.step_comprehension)[:60]}), where the per-batch hooks "
                "cannot go",
                path=self.src.path,
                line=self.src.line(loop.step_comprehension),
                hint="write it as a for loop (for batch in loader: "
                "results.append(step(batch))), then run again",
            )
        cm_of = self._thread_manager(loop)
        cm = cm_of[id(loop.entry_scope)]
        model = loop.model_in_entry

        anchor, bare = loop.entry_loop, model
        wrap = find_wrap(self.index, model, loop.entry_scope, self.src.line(loop.entry_loop))
        wrap_scope = loop.entry_scope
        entry_cls = self.index.class_of(loop.entry_scope)
        if wrap is None and entry_cls is not None:
            # `self.model = DDP(model)` in `__init__`: the bare model is prepared there
            found = find_wrap_in_class(self.index, model, entry_cls)
            if found is not None:
                wrap, wrap_scope = found
        if "qat" in techniques:
            refuse_qat_on_a_container_item(self.src, loop)
        if wrap is None and "qat" in techniques:
            self._refuse_qat_behind_a_wrap(loop, model, entry_cls)
        if wrap is not None:
            anchor, bare = wrap_anchor(self.src, wrap, loop.entry_loop), wrap.inner
            where = (
                "the wrap"
                if anchor is wrap.statement
                else f"the branches at line {self.src.line(anchor)}"
            )
            self.plan.placed.append(
                f"the model is wrapped by {wrap.what} at line {self.src.line(wrap.statement)}: "
                f"{bare} is compressed before {where}"
            )
            if not self._defined_before(bare, anchor, loop, wrap_scope):
                raise AnalysisError(
                    f"{bare} is wrapped by {wrap.what} at line {self.src.line(wrap.statement)}, "
                    f"but it is only bound inside the branches at line {self.src.line(anchor)}, "
                    "so no single place prepares it for every path",
                    path=self.src.path,
                    line=self.src.line(anchor),
                    hint="build the model before the branches that wrap it",
                )
            if "qat" in techniques and wrap_scope is loop.entry_scope:
                refuse_qat_before_a_weight_copy(
                    self.index,
                    bare,
                    wrap_scope,
                    self.src.line(anchor),
                    self.src.line(loop.entry_loop),
                    f"{where} at line {self.src.line(anchor)}"
                    if anchor is wrap.statement
                    else where,
                )
        self.refuse_peft_weights(bare, wrap_scope)
        if "pruning" in techniques:
            refuse_pruning_under_schedule_free(self.index, loop)
        average = self._moving_average(loop, bare, wrap_scope)
        caller: CallerSite | None = None
        in_place: str | None = None  # why QAT converts the module the script holds itself
        runtime_target = self.options.target == "runtime"
        if "qat" in techniques:
            found = caller_of_parameter(
                self.index,
                loop,
                bare,
                "distillation" in techniques,
                None if wrap is None else self.src.line(wrap.statement),
                in_place=runtime_target,
            )
            if isinstance(found, str):
                in_place = found
            else:
                caller = found
        if "qat" in techniques and caller is None and in_place is None:
            held = attribute_alias(self.index, bare, loop.entry_scope, self.src.line(anchor))
            in_place = refuse_qat_on_a_constructor_parameter(
                self.index, loop, held or bare, in_place=runtime_target
            )
        if in_place is not None:
            self.plan.placed.append(in_place)
        if loop.model_method is not None:
            self._refuse_model_method(loop)
        if "qat" in techniques and loop.model_call is not None:
            self._check_autocast(loop.model_call)
        if caller is None:
            anchor = self._before_a_step_factory(loop, anchor)
            if "qat" in techniques and in_place is None and anchor is loop.entry_loop:
                anchor = self._before_a_resume(loop, bare, anchor)
        if average is not None and "qat" in techniques:
            anchor = self._before_the_average(average, loop, bare, anchor, caller)
            average = average if anchor is not None else None
            anchor = anchor or loop.entry_loop
        total_steps = loop.total_steps
        fit_later: str | None = None
        if caller is not None:
            anchor, bare = self._prepare_in_caller(loop, caller, cm)
            fit_later, total_steps = total_steps or None, "" if total_steps else None
        elif total_steps and anchor is not loop.entry_loop:
            if self._defined_before(total_steps, loop.entry_loop, loop):
                # the loaders may be built, or sharded by the wrap (`accelerator.prepare`), and
                # the step budget set (`args.max_train_steps = ...`), between the wrap and
                # the loop: the schedule is fitted to the run right before training starts
                fit_later, total_steps = total_steps, ""
            else:
                self.plan.warnings.append(
                    f"the run length ({total_steps}) is only known after line {self.src.line(anchor)}, "
                    "where the compression manager must be prepared"
                )
                total_steps = None
        prepare_scope = loop.entry_scope if caller is None else caller.scope
        training = loop.entry_loop if caller is None else caller.statement
        before: list[str] = []
        if "distillation" in techniques:
            if self.options.distillation.teacher is None and loop.teacher_in_entry is not None:
                self.teacher_name, self.script_teacher = loop.teacher_in_entry, True
                self.plan.placed.append(
                    f"teacher: {loop.teacher_in_entry}, the frozen model the script already runs"
                )
            else:
                before.append(self.teacher(bare, prepare_scope, training, loop.teacher_unpaired))
        if self.options.recipe is not None:
            self._recipe_facts(loop, anchor, in_entry=caller is None)
        end = weights_reloaded_after(self.index, bare, training, prepare_scope)
        end_cm = cm  # the manager as the statement after which training ends names it
        by_caller = (
            None if end is not None else reloaded_after_the_method(self.index, bare, prepare_scope)
        )
        if by_caller is not None and cm.startswith("self."):
            end, end_cm = by_caller.reload, by_caller.receiver + cm[len("self") :]
        if end is not None and self._prunes_on_a_fitted_schedule():
            # a gradual schedule leaves the early checkpoints less sparse, and the best one
            # may well be one of them: pruned at once, every checkpoint has the target
            self.one_shot_reason = (
                f"the best weights saved during training are loaded back at line "
                f"{self.src.line(end)}: pruning is one-shot at step {{start}}, so every "
                "checkpoint saved has the target sparsity; pass --end-step to prune gradually"
            )
            total_steps, fit_later = None, None
        elif end is None and (total_steps or fit_later) and self._prunes_on_a_fitted_schedule():
            self._keep_the_best_checkpoint_sparse(loop)
        confs = self.configs(total_steps)
        if self.options.staged:
            confs = self._pipeline(loop, cm, anchor, confs, total_steps, fit_later)
        in_place_arg = ", in_place=True" if in_place is not None else ""
        before.append(f"{cm} = prepare_compression({bare}, {confs}{in_place_arg})")
        before.append(f"{cm}.callbacks.on_train_begin()")
        if average is not None:
            self._follow_the_average(average, anchor, cm, before, in_caller=caller is not None)
        if "qat" in techniques and in_place is None:
            self.declare_global(bare, prepare_scope)
            before.append(f"{bare} = {cm}.model")
            if caller is None and (
                alias := attribute_alias(self.index, bare, prepare_scope, self.src.line(anchor))
            ):
                before.append(f"{alias} = {bare}")  # the class's other methods see it too
        self.insert(anchor, "before", before, "prepare_compression and on_train_begin")
        self._warn_one_epoch_function(loop, prepare_scope)
        self._warn_early_stopping(loop)
        if (
            fit_later is not None
            and not self.options.staged
            and "pruning" in techniques
            and self.options.pruning.end_step is None
            and self.options.recipe is None
        ):
            self._fit_schedule(loop, cm, fit_later)
        if end is not None:
            # the best weights saved during training are loaded back: QAT converts (and
            # pruning finishes) on them, and the fake-quant checkpoint still fits the model
            self.plan.placed.append(
                f"the model's weights are loaded again at line {self.src.line(end)}: "
                "training ends after that"
            )
        after_training = [f"{end_cm}.callbacks.on_train_end()"]
        if average is not None and "qat" in techniques:
            after_training += self._rebind_the_converted_copy(average, cm)
        if "qat" in techniques:
            # after the reload of the best weights when there is one: what reads the model
            # from there on decides
            after_training += self._save_the_int8_model(bare, cm, end or training, prepare_scope)
        self.insert(end or training, "after", after_training, "on_train_end")
        if "qat" in techniques:
            self._warn_reload_after_training(bare, prepare_scope, training)
            self._warn_float_reload(loop)

        if loop.epoch_loop is not None:
            epoch = loop.epoch_var or "0"
            self.insert(
                loop.epoch_loop,
                "body_start",
                [f"{cm}.callbacks.on_epoch_begin({epoch})"],
                "on_epoch_begin",
            )
            self.insert(
                loop.epoch_loop, "body_end", [f"{cm}.callbacks.on_epoch_end()"], "on_epoch_end"
            )
        step_cm = cm_of.get(id(loop.step_scope), "")  # none where the step function takes the hooks
        trains = train_only(self.index, loop)
        step_test = trains.step_test if trains is not None else None
        if trains is not None:
            self.plan.placed.append(
                f"the step trains only when {trains.test} (line {self.src.line(trains.branch)}): "
                "the per-batch hooks run under that test, not on evaluation batches"
            )
        inner_cm = cm_of[id(loop.backward_scope)]
        closure = self._step_closure(loop) if trains is None else None
        if closure is not None:
            self._step_hooks_in_closure(closure, inner_cm)
        else:
            self.insert(
                loop.step_loop,
                "body_start",
                self._only_when(
                    [f"{step_cm}.callbacks.on_step_begin({loop.step_index or '0'})"], step_test
                ),
                "on_step_begin",
            )
            self.insert(
                loop.step_loop,
                "body_end",
                self._only_when([f"{step_cm}.callbacks.on_step_end()"], step_test),
                "on_step_end",
            )

        if "distillation" in techniques:
            self._distillation_loss(loop, inner_cm, trains)
            for other in loop.alternatives:
                self._distillation_loss(other, inner_cm, train_only(self.index, other))
        if loop.step_runs_closure:
            self._hooks_around_a_closure_step(loop, inner_cm, cm_of)
        for step in [loop.optimizer_step, *loop.other_steps]:
            if step is loop.optimizer_step and loop.step_runs_closure:
                continue
            # each path's step: `loss_scaler(loss, optimizer)` on one path and
            # `loss.backward(); optimizer.step()` on the other (timm without --amp)
            scaler_call = self._scaler_call_in(step)
            if scaler_call is not None:
                optimizer = self.src.code(scaler_call.args[1].value)
                self._hooks_inside_the_scaler(step, optimizer, inner_cm)
                continue
            self.insert(
                step,
                "before",
                [f"{inner_cm}.callbacks.on_before_optimizer_step()"],
                "on_before_optimizer_step",
            )
            self.insert(
                step,
                "after",
                [f"{inner_cm}.callbacks.on_after_optimizer_step()"],
                "on_after_optimizer_step",
            )
        self.training_imports()
        self.plan.warnings.extend(loop.notes)
        return self.plan

    def _moving_average(self, loop: TrainingLoop, model: str, scope: Scope) -> MovingAverage | None:
        """A moving average of `model` built before training: refused (or a warning when
        an off-by-default flag builds it), unless pruning on the bundled runtime keeps
        it sparse (`track_copy`; QAT would leave it float): then it is returned."""
        techniques = self.options.approach
        weights = [WEIGHT_TECHNIQUES[t] for t in techniques if t in WEIGHT_TECHNIQUES]
        if not weights:
            return None
        before = self.src.line(loop.entry_loop) if scope is loop.entry_scope else 1 << 30
        call = ema_copy(self.index, model, scope, before, loop.frozen_in_entry)
        if call is None:
            return None
        average = MovingAverage(call, model, scope, " and ".join(weights))
        if self.options.target == "runtime" and (
            "qat" not in techniques or "distillation" not in techniques
        ):
            return average  # QAT: if it can be prepared before the copy (_before_the_average)
        self._refuse_the_average(average)
        return None

    def _refuse_the_average(self, average: MovingAverage) -> None:
        if warning := average.refuse(self.index):
            self.plan.warnings.append(warning)

    def _follow_the_average(
        self,
        average: MovingAverage,
        anchor: cst.CSTNode,
        cm: str,
        before: list[str],
        in_caller: bool,
    ) -> None:
        """`cm.track_copy(<the average>)` where both are bound, else the refusal."""
        tracking = (
            None if in_caller else copy_tracking(self.index, average.call, anchor, average.scope)
        )
        if tracking is None:
            self._refuse_the_average(average)
            return
        call = f"{cm}.track_copy({tracking.holder})"
        if tracking.guard is not None:
            before.append(f"if {tracking.guard}:\n    {call}")
        elif tracking.after is None:
            before.append(call)
        else:
            self.insert(tracking.after, "after", [call], "track_copy")
        self.plan.placed.append(
            f"the moving average {tracking.holder} (line {tracking.line}) is "
            + (
                f"built from the QAT-prepared model and converted to int8 with it ({call})"
                if "qat" in self.options.approach
                else f"pruned with the model: {call} applies the masks to it too"
            )
        )

    def _prunes_on_a_fitted_schedule(self) -> bool:
        """Pruning whose end step the tool fits to the run (no --end-step, recipe, stages)."""
        return (
            "pruning" in self.options.approach
            and self.options.pruning.end_step is None
            and self.options.recipe is None
            and not self.options.staged
        )

    def _save_the_int8_model(
        self, model: str, cm: str, training: cst.BaseStatement, scope: Scope
    ) -> list[str]:
        """`cm.save(folder)` after `on_train_end` when nothing after training reads the
        model: the script checkpoints only inside its loop (`save_checkpoint(...)` per
        epoch), so the int8 model QAT ends with would be lost."""
        fn = self.index.function(scope)
        if (
            "." in model
            # a method's model lives on in its object, a parameter in the caller: they
            # may well be read (or saved) after the call returns
            or self.index.class_of(scope) is not None
            or (
                fn is not None
                and model in fn.all_params()
                # `return model, history` to callers that drop it (`del model`) is no read
                and not final_model.dropped_by_callers(self.index, model, scope)
            )
            or any(
                final_model.later_reads(self.index, FinalModel(name, training, "after", scope))
                for name in self._aliases_of(model, scope)
            )
        ):
            return []
        line = self.src.line(training)
        folder, chosen = saved_output.output_dir(
            self.index, scope, line + 1, "+".join(self.options.approach)
        )
        folder, chosen = self.folder_of_each_pass(folder, chosen, training, scope)
        guard = saved_output.main_process_test(self.index, scope, line + 1)
        self.plan.placed.append(
            f"note: nothing after the training loop at line {line} reads {model}: the int8 "
            f"model training ends with is saved to {folder} ({chosen}) as best_model.pt; "
            f"load it with neural_coder.runtime.load({folder}, <the float model>)"
            + (f"; written only where {guard} holds" if guard is not None else "")
        )
        save = f"{cm}.save({folder})"
        return [f"if {guard}:\n    {save}" if guard is not None else save]

    def _aliases_of(self, model: str, scope: Scope) -> set[str]:
        """`model` and the names `scope` binds to an expression of it (`raw_model =
        model.module if ddp else model`, `unwrapped = accelerator.unwrap_model(model)`)."""
        names = {model}
        for target, assignments in self.index.assignments.items():
            if "." not in target and any(
                a.scope is scope and model in free_names(a.value) for a in assignments
            ):
                names.add(target)
        return names

    def _keep_the_best_checkpoint_sparse(self, loop: TrainingLoop) -> None:
        """The loop saves a checkpoint when the metric improves (`save_checkpoint(state,
        is_best)`): on a schedule over 80% of the run the best one may predate the target
        sparsity, and it is the file people keep. Saved at epoch ends, pruning reaches the
        target by the end of the first epoch; saved every few steps, a warning."""
        best = best_checkpoint_save(self.index, loop.entry_loop)
        if best is None:
            return
        line = self.src.line(best.call)
        if best.per_step or loop.epoch_loop is None or loop.epochs is None:
            self.plan.warnings.append(
                f"line {line} keeps the best checkpoint (saved when the metric improves): "
                "pruning reaches its target sparsity at 80% of the run, so a best checkpoint "
                "saved before then is less sparse; pass --end-step (an optimizer step before "
                "the first checkpoint you would keep) to reach the target sooner"
            )
            return
        self.prune_in_first_epoch_of = loop.epochs
        self.plan.warnings.append(
            f"line {line} keeps the best checkpoint (saved when the metric improves): pruning "
            "reaches the target sparsity by the end of the first epoch instead of at 80% of "
            "the run, so every checkpoint saved at an epoch's end has it; pass --end-step to "
            "prune over more of the run (the best checkpoint may then be less sparse)"
        )

    def _warn_early_stopping(self, loop: TrainingLoop) -> None:
        """`if bad_epochs >= patience: break` in the epoch loop: the pruning schedule is
        fitted to every epoch, so a run that stops early ends short of the target."""
        if (
            not self._prunes_on_a_fitted_schedule()
            or self.one_shot_reason is not None
            or self.prune_in_first_epoch_of is not None  # the target is reached in epoch 1
            or loop.epoch_loop is None
        ):
            return
        budget = free_names(cst.parse_expression(loop.total_steps)) if loop.total_steps else set()
        # `if completed_steps >= args.max_train_steps: break` ends at the budget the
        # schedule is fitted to: not early
        # a `break` of the step loop on a trigger (accelerate's `if accelerator.check_trigger():
        # break`) cuts the run short as well
        inner = early_exits(loop.step_loop) if loop.step_loop is not loop.epoch_loop else []
        exits = [
            e
            for e in [*early_exits(loop.epoch_loop), *inner]
            if not any(
                isinstance(a, cst.If) and free_names(a.test) & budget for a in self.src.ancestors(e)
            )
        ]
        if exits:
            which = "epoch" if any(e is exits[0] for e in early_exits(loop.epoch_loop)) else "step"
            stop_loop = loop.epoch_loop if which == "epoch" else loop.step_loop
            self.plan.warnings.append(
                f"the {which} loop at line {self.src.line(stop_loop)} can stop early "
                f"(line {self.src.line(exits[0])}): pruning reaches its target sparsity at 80% "
                "of all the epochs, so a run that stops before then ends less sparse; pass "
                "--end-step (an optimizer step the run always reaches) to prune sooner"
            )
