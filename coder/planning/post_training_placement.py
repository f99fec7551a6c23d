"""Where the fit goes in a hand-written script: after training (once any reload of the
trained weights is done), else before the model's first evaluation, else after the one
model the script builds; and the refusals when that place is unknown or the quantized
model would be thrown away. A part of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import MARKER_TRAIN, evaluation, final_model, kinds, loaders, workers
from neural_coder.analysis.callee_reloads import reloaded_after_the_method
from neural_coder.analysis.expressions import free_names
from neural_coder.analysis.final_model import FinalModel
from neural_coder.analysis.weight_loads import reloads
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from .base import BasePlanner


class FitPlacement(BasePlanner):
    """A part of `PostTrainingPlanner` (post_training.py): the place of the fit."""

    def _placement(self, evaluations: list[evaluation.Evaluation]) -> FinalModel:
        loop = self.facts.loop
        if loop is not None:  # the trained model, once training (and any reload) is done
            place = final_model.after_training(
                self.index, loop.model_in_entry, loop.entry_loop, loop.entry_scope
            )
            by_caller = reloaded_after_the_method(self.index, place.model, place.scope)
            if by_caller is not None:
                model = by_caller.receiver + place.model[len("self") :]
                line = self.src.line(by_caller.reload)
                note = f"{model} is loaded again at line {line}: quantized after that"
                place = FinalModel(model, by_caller.reload, "after", by_caller.scope, [note])
            self._refuse_uncalled_training(place)
            return place
        self._refuse_unknown_training()
        if evaluations:
            first = evaluations[0]
            line = self.src.line(first.call)
            model, statement, scope = first.model_arg, first.statement, first.scope
            built = evaluation.model_assignment(self.index, model, scope, line)
            notes = []
            if built is None:  # a parameter: quantized where a caller builds it
                lifted = final_model.built_by_caller(self.index, model, scope)
                if lifted is None:
                    raise AnalysisError(
                        f"{model} is evaluated at line {line} but not built in "
                        f"{self.index.describe(scope)}"
                        + (
                            ", nor by a caller that passes it in"
                            if self._is_param(model, scope)
                            else ""
                        ),
                        path=self.src.path,
                        line=line,
                        hint="mark the model's assignment with '# neural-coder: model'",
                    )
                model, statement, scope, built = (
                    lifted.model,
                    lifted.statement,
                    lifted.scope,
                    lifted.built,
                )
                notes.append(
                    f"the model is built in {lifted.path[0]} and evaluated in "
                    f"{' -> '.join(lifted.path[1:])}: quantized before line {self.src.line(statement)}"
                )
            anchor = final_model.outermost_loop(self.index, statement, scope)
            if self.src.line(anchor) < self.src.line(built) < self.src.line(statement):
                anchor = statement  # a model built per iteration is quantized per iteration
            else:  # out of an `if args.do_eval:` that the model is built outside of
                anchor = final_model.in_block_of(self.index, anchor, built)
            anchor = self._before_an_earlier_run(model, built, anchor, first, scope)
            return FinalModel(model, anchor, "before", scope, notes)
        models = [
            f
            for f in self.facts.found
            if f.kind == "model"
            and f.target
            and "." not in f.target
            and not self._built_in_a_loop(f.target, f.line)
            and final_model.is_module_built(self.index, f.target, f.what)
        ]
        targets = list(dict.fromkeys(f.target or "" for f in models))  # re-bindings: one model
        if not targets and (run_by_pipeline := self._pipeline_model()) is not None:
            return run_by_pipeline
        if not targets:
            self._refuse_a_torchscript_model()
        if len(targets) != 1:
            raise AnalysisError(
                "no evaluation function takes the model, and "
                + (
                    "no model was found"
                    if not targets
                    else f"{len(targets)} models are built ({', '.join(targets)})"
                ),
                path=self.src.path,
                hint="add a function that evaluates the model and returns a metric, or keep one model per file",
            )
        first = models[0]
        assignment = next(
            a
            for a in self.index.assignments[targets[0]]
            if self.src.line(a.statement) == first.line
        )
        anchor = assignment.statement
        if not self._is_param(targets[0], assignment.scope):
            anchor = final_model.out_of_branches(self.index, anchor, assignment.scope)
        elif self._in_a_branch(anchor, assignment.scope):
            # `if training: (the model the caller passed) else: model = load(weights)`:
            # the fit quantizes what this function builds, not what a caller hands over
            self.plan.placed.append(
                f"{targets[0]} is also a parameter of {self.index.describe(assignment.scope)}: "
                f"the fit follows line "
                f"{first.line}, on the path that builds it"
            )
        place = FinalModel(targets[0], anchor, "after", assignment.scope)
        reload = final_model.last_reload(self.index, place, rebuilds=True)
        if reload is not None:
            place.anchor = reload
        return self._where_data_is_built(place)

    def _before_an_earlier_run(
        self,
        model: str,
        built: cst.BaseStatement,
        anchor: cst.BaseStatement,
        first: evaluation.Evaluation,
        scope: cst.FunctionDef | cst.Module,
    ) -> cst.BaseStatement:
        """The model runs before its evaluation (a demo `model.generate(...)`, `model(x)`,
        a helper given it, a loop over prompts): the fit goes before that first run, so
        what the script shows first comes from the compressed model. Not when a name the
        evaluation call reads (it tunes, and may calibrate, the fit) is only bound later."""
        runs = final_model.first_run_after(self.index, FinalModel(model, built, "after", scope))
        while runs is not None and reloads(self.index, runs, model, scope):
            # the weights loaded into it (`model.load_state_dict(...)`): not a run
            runs = final_model.first_run_after(self.index, FinalModel(model, runs, "after", scope))
        if runs is None or self.src.line(runs) >= self.src.line(anchor):
            return anchor
        line = self.src.line(runs)
        late = [
            name
            for name in free_names(first.call) - {model}
            if self._bound_only_from(name, scope, line)
        ]
        if late:
            self.plan.warnings.append(
                f"{model} runs at line {line}, before its evaluation at line "
                f"{self.src.line(first.call)}, but {', '.join(late)} is only bound after it: "
                f"the fit follows line {line}, which runs the float model"
            )
            return anchor
        self.plan.placed.append(
            f"note: {model} first runs at line {line}, before its evaluation at line "
            f"{self.src.line(first.call)}: the fit goes before it"
        )
        return runs

    def _bound_only_from(self, name: str, scope: cst.FunctionDef | cst.Module, line: int) -> bool:
        """`scope` binds `name` (an assignment, a `def`), but not before `line`."""
        lines = [self.src.line(a.statement) for a in self.index.assignments_in(name, scope)]
        body = scope.body.body if isinstance(scope, cst.FunctionDef) else scope.body
        lines += [
            self.src.line(s)
            for s in body
            if isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value == name
        ]
        return bool(lines) and min(lines) >= line

    def _pipeline_model(self) -> FinalModel | None:
        """`classifier = pipeline("text-classification", model=folder)` builds the script's
        one model inside the pipeline: `classifier.model`, quantized once the pipeline is
        built (the fit's module goes back into the pipeline, which reads its config)."""
        built = [
            a
            for assigned in self.index.assignments.values()
            for a in assigned
            if kinds.is_hf_pipeline(self.index, a.value) and a.target.isidentifier()
        ]
        if len(built) != 1:
            return None
        pipe = built[0]
        self.plan.placed.append(
            f"note: the model is built by the pipeline at line {self.src.line(pipe.statement)}: "
            f"{pipe.target}.model is quantized"
        )
        place = FinalModel(f"{pipe.target}.model", pipe.statement, "after", pipe.scope)
        return self._where_data_is_built(place)

    def _refuse_a_torchscript_model(self) -> None:
        """`model = torch.jit.load(path)`: a compiled TorchScript module, which the fit's
        paths (torch.ao's eager and FX, INC's) cannot quantize: they swap Python modules."""
        for name, assigned in self.index.assignments.items():
            for a in assigned:
                if kinds.callee(self.index, a.value) == "torch.jit.load":
                    line = self.src.line(a.statement)
                    raise AnalysisError(
                        f"{name} is a TorchScript module (torch.jit.load at line {line}): "
                        "post-training quantization rewrites the model's Python modules, which "
                        "a compiled TorchScript module no longer has",
                        path=self.src.path,
                        line=line,
                        hint="build the model from its class and load its state dict (then "
                        "torch.jit.trace or torch.jit.script the quantized model), or run "
                        "the tool on the script that exports it",
                    )

    def _where_data_is_built(self, place: FinalModel) -> FinalModel:
        """An evaluation-only script that builds its DataLoader after the model (load the
        weights, then the data, then an inline evaluation loop): for a fit that needs
        data, the place before the model first runs, once a loader is built."""
        # without an evaluation function (this path), bf16 times one batch too
        needs_data = self.reads_batches or self._bf16_needs_a_batch(evaluated=False)
        line = self.src.line(place.anchor) + 1
        if not needs_data or loaders.visible_loaders(self.index, place.scope, line):
            return place
        runs = final_model.first_run_after(self.index, place)
        if runs is None:
            return place
        built = loaders.visible_loaders(self.index, place.scope, self.src.line(runs))
        if not built:
            return place
        self.plan.placed.append(
            f"note: {built[0]} is built after {place.model} (line {self.src.line(place.anchor)}): "
            f"the fit goes before line {self.src.line(runs)}, where {place.model} first runs"
        )
        return FinalModel(place.model, runs, "before", place.scope, place.notes)

    def _in_a_branch(self, statement: cst.BaseStatement, scope: cst.CSTNode) -> bool:
        """`statement` runs under an `if` of `scope` (not crossing a loop)."""
        for ancestor in self.src.ancestors(statement):
            if ancestor is scope or isinstance(ancestor, cst.For | cst.While):
                return False
            if isinstance(ancestor, cst.If):
                return True
        return False

    def _is_param(self, name: str, scope: cst.FunctionDef | cst.Module) -> bool:
        fn = self.index.function(scope)
        return fn is not None and name in fn.all_params()

    def _built_in_a_loop(self, target: str, line: int) -> bool:
        """A value assigned inside a loop is rebuilt each iteration (a batch's output, a
        metric): a fit there would run once per batch."""
        for a in self.index.assignments.get(target, []):
            if self.src.line(a.statement) == line:
                if final_model.outermost_loop(self.index, a.statement, a.scope) is a.statement:
                    return False
                # an ensemble of checkpoints (`for path in model_paths: model = Net();
                # model.load_state_dict(torch.load(path))`): one model per checkpoint,
                # fitted once its weights are loaded
                built = FinalModel(target, a.statement, "after", a.scope)
                return final_model.last_reload(self.index, built) is None
        return False

    def _refuse_unknown_training(self) -> None:
        """The script trains, but its loop could not be read: the place where the model is
        final is unknown, and a fit before training would quantize the untrained model."""
        if self.facts.trainers:
            return
        backward = self.facts.backward_calls
        if not backward:
            return
        line = self.src.line(backward[0])
        error = self.facts.loop_error
        why = error.message if error else "it could not be read"
        raise AnalysisError(
            f"the script trains the model (.backward() at line {line}), but its training loop "
            f"could not be read ({why}): a post-training fit must follow training",
            path=self.src.path,
            line=line,
            # several loops: the marker that picks one is the way out
            hint=error.hint
            if error is not None and error.hint and MARKER_TRAIN in error.hint
            else "mark the trained model's assignment with '# neural-coder: model' and make the "
            "loop readable, or quantize in a script that loads the trained weights",
        )

    def _refuse_uncalled_training(self, place: FinalModel) -> None:
        """Training in a function this file never calls (`train_one_epoch()` of an
        `engine.py`): the model is final in the script that calls it."""
        fn = self.index.function(place.scope)
        if fn is None or "." in place.model or self.index.call_sites(fn):
            return
        if final_model.later_reads(self.index, place):
            return
        started = workers.worker_start(self.index, fn)
        if started is not None:
            raise AnalysisError(
                f"training runs in {fn.key}(), which worker processes run on the model handed "
                f"to them ({workers.describe(self.index, started)}): the model is final in the "
                "parent once they have joined, where the tool places no fit",
                path=self.src.path,
                line=self.src.line(fn.node),
                hint="save the model after the workers join (torch.save(model.state_dict(), "
                "path)) and quantize in a script that loads it",
            )
        raise AnalysisError(
            f"training runs in {fn.key}(), which nothing in this file calls: the model is "
            "final where its caller has trained it",
            path=self.src.path,
            line=self.src.line(fn.node),
            hint=f"run the tool on the script that calls {fn.key}() (with this file beside it)",
        )

    def _check_result_is_used(self, place: FinalModel) -> None:
        """A local name that nothing reads after the fit would drop the quantized model."""
        if "." in place.model or final_model.later_reads(self.index, place):
            return
        line = self.src.line(place.anchor)
        rebuilt = (
            ""
            if place.rebuilt is None
            else f" before line {self.src.line(place.rebuilt)} builds a new, untrained "
            f"{place.model} ({self.src.code(m.findall(place.rebuilt, m.Assign())[0]).strip()}), "
            "which is no reload of "
            "the trained weights"
        )
        raise AnalysisError(
            f"the quantized model would be thrown away: nothing after line {line} in "
            f"{self.index.describe(place.scope)} evaluates, saves or returns {place.model}"
            + rebuilt,
            path=self.src.path,
            line=line,
            hint=f"evaluate or save {place.model} after training (for example "
            f"torch.save({place.model}.state_dict(), path) after line {line}), then run again",
        )
