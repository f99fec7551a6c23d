"""Post-training approaches: a `fit` call after the model exists (after training
when the script trains) and before the model is evaluated; the quantized model
replaces the fp32 one for the rest of the script. `benchmark` measures the model
at the same place.

`eval_func` is built from the script's own evaluation: its call of a function
that takes the model and returns a metric, or `trainer.evaluate()` through the
runtime's `trainer_eval_func` when a Hugging Face Trainer evaluates.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import evaluation, final_model, loader_rebuild, loaders
from neural_coder.analysis.evaluation import higher_is_better
from neural_coder.analysis.final_model import FinalModel
from neural_coder.analysis.index import Function
from neural_coder.analysis.trainer import TrainerUse
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms import snippets
from neural_coder.transforms.edits import AddImport
from neural_coder.transforms.snippets import Code

from .base import BasePlanner, Plan

QUANT_APPROACHES = {"ptq-static": "static", "ptq-dynamic": "dynamic", "ptq-auto": "auto"}


class PostTrainingPlanner(BasePlanner):
    #: more arguments of the config the fit is given (a subclass's: example_inputs=)
    config_extra: dict[str, object] | None = None

    def build(self) -> Plan:
        if self.facts.loop is None and self.facts.trainers:
            return self._build_for_trainer(self._evaluated_trainer())
        evaluations = evaluation.find_evaluations(self.index)
        place = self._placement(evaluations)
        model, scope = place.model, place.scope
        self.refuse_peft_weights(model, scope)
        place = self._evaluation_branch_instead(place, evaluations)
        model, scope = place.model, place.scope
        self._check_result_is_used(place)
        found = self._evaluation_for(place, evaluations)
        needs_data = self.approach == "benchmark" or self.quant_approach in ("static", "auto")
        loader = self._loader(found, place) if needs_data else None
        if self._bf16_needs_a_batch(found is not None):
            loader = self._loader(found, place, required=False)
            if loader is None:
                self._refuse_bf16_without_a_batch(place.anchor, place.where)
        eval_func = what = None
        if found is not None:
            chosen, substitutions = found
            candidate = self.free_name("candidate")
            eval_func = f"lambda {candidate}: {self._eval_call(chosen, candidate, substitutions)}"
            what = f"{chosen.function.key}() as called at line {self.src.line(chosen.call)}"
        better = found is None or higher_is_better(
            evaluation.metric_name(self.index, found[0].function)
        )
        self.plan.placed += [f"note: {n}" for n in place.notes]
        self._emit(
            model, place.anchor, place.where, loader, eval_func, what, higher_is_better=better
        )
        return self.plan

    @property
    def approach(self) -> str:
        return self.options.approach[0]

    @property
    def quant_approach(self) -> str | None:
        return QUANT_APPROACHES.get(self.approach)

    # -- the call -------------------------------------------------------------------------
    def _emit(
        self,
        model: str,
        anchor: cst.CSTNode,
        where: str,
        loader: str | None,
        eval_func: str | None,
        eval_source: str | None,
        higher_is_better: bool,
        trainer: str | None = None,
        adopt: tuple[str, str] | None = None,
    ) -> None:
        """Insert the fit (or benchmark) call on `model`; its result replaces `model`
        (in `trainer` when a Hugging Face Trainer holds it; through the runtime function
        `adopt`, (module, name), when the script needs the bare module back)."""
        if self.approach == "benchmark":
            call = snippets.call(
                "benchmark.fit",
                {"b_dataloader": Code(loader or "")},
                args=[Code(model), Code(self._benchmark_config())],
            )
            self.insert(anchor, where, [call], "benchmark.fit")  # type: ignore[arg-type]
            self.plan.edits += [
                AddImport(self.modules["package"], "benchmark"),
                AddImport(self.modules["config"], "BenchmarkConfig"),
            ]
            return
        kwargs: dict[str, object] = {}
        if loader is not None:
            kwargs["calib_dataloader"] = Code(loader)
        if eval_func is not None:
            kwargs["eval_func"] = Code(eval_func)
            p = self.options.ptq
            self.plan.placed.append(
                f"eval_func: {eval_source}; accuracy-aware tuning ({p.criterion} loss <= {p.tolerable_loss}"
                + ("" if higher_is_better else ", lower is better")
                + ")"
            )
        else:
            self.plan.warnings.append(
                "no evaluation of the model was found: it is converted once, without accuracy tuning"
            )
        module = "quantization" if self.quant_approach else "mix_precision"
        call = snippets.call(
            f"{module}.fit",
            kwargs,
            args=[Code(model), Code(self._config(eval_func is not None, higher_is_better))],
        )
        quantized = self.free_name("quantized_model")
        if adopt is not None:
            replace = f"{model} = {adopt[1]}({quantized}, {model})"
            self.plan.edits.append(AddImport(*adopt))
        elif trainer is None:
            replace = f"{model} = {quantized} if {quantized} is not None else {model}"
        else:
            replace = f"use_quantized_model({trainer}, {quantized})"
            self.plan.edits.append(AddImport(self.modules["transformers"], "use_quantized_model"))
        lines = [f"{quantized} = {call}", replace]
        self.insert(anchor, where, lines, f"{module}.fit")  # type: ignore[arg-type]
        self._imports(module, tuned=eval_func is not None)

    def _config(self, tuned: bool, higher_is_better: bool) -> str:
        p = self.options.ptq
        kwargs: dict[str, object] = {}
        if self.quant_approach:
            kwargs["approach"] = self.quant_approach
            if self.quant_approach != "dynamic":
                kwargs["calibration_sampling_size"] = [p.calibration_sampling_size]
        kwargs.update(self.config_extra or {})
        if tuned:
            criterion: dict[str, object] = {
                "criterion": p.criterion,
                "tolerable_loss": float(p.tolerable_loss),
            }
            if not higher_is_better:
                criterion["higher_is_better"] = False
            kwargs["accuracy_criterion"] = Code(snippets.call("AccuracyCriterion", criterion))
            kwargs["tuning_criterion"] = Code(
                snippets.call("TuningCriterion", {"max_trials": p.max_trials})
            )
        name = "PostTrainingQuantConfig" if self.quant_approach else "MixedPrecisionConfig"
        return snippets.call(name, kwargs)

    def _benchmark_config(self) -> str:
        b = self.options.benchmark
        kwargs: dict[str, object] = {"warmup": b.warmup, "iteration": b.iteration}
        if b.cores_per_instance is not None:
            kwargs["cores_per_instance"] = b.cores_per_instance
        kwargs["num_of_instance"] = b.num_of_instance
        return snippets.call("BenchmarkConfig", kwargs)

    def _imports(self, module: str, tuned: bool) -> None:
        config = self.modules["config"]
        name = "PostTrainingQuantConfig" if self.quant_approach else "MixedPrecisionConfig"
        self.plan.edits += [AddImport(self.modules["package"], module), AddImport(config, name)]
        if tuned:
            self.plan.edits += [
                AddImport(config, "AccuracyCriterion"),
                AddImport(config, "TuningCriterion"),
            ]

    # -- a hand-written script ----------------------------------------------------------------
    def _placement(self, evaluations: list[evaluation.Evaluation]) -> FinalModel:
        loop = self.facts.loop
        if loop is not None:  # the trained model, once training (and any reload) is done
            place = final_model.after_training(
                self.index, loop.model_in_entry, loop.entry_loop, loop.entry_scope
            )
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
        return place

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
                return (
                    final_model.outermost_loop(self.index, a.statement, a.scope) is not a.statement
                )
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
        why = self.facts.loop_error.message if self.facts.loop_error else "it could not be read"
        raise AnalysisError(
            f"the script trains the model (.backward() at line {line}), but its training loop "
            f"could not be read ({why}): a post-training fit must follow training",
            path=self.src.path,
            line=line,
            hint="mark the trained model's assignment with '# neural-coder: model' and make the "
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
        raise AnalysisError(
            f"training runs in {fn.key}(), which nothing in this file calls: the model is "
            "final where its caller has trained it",
            path=self.src.path,
            line=self.src.line(fn.node),
            hint=f"run the tool on the script that calls {fn.key}() (with this file beside it)",
        )

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

    def _evaluation_for(
        self, place: FinalModel, evaluations: list[evaluation.Evaluation]
    ) -> tuple[evaluation.Evaluation, dict[str, str]] | None:
        """The script's evaluation of the model at `place` whose arguments all exist there
        (a loop variable is replaced by the first item of a literal the loop runs over);
        the evaluations that follow `place` first."""
        line = self.src.line(place.anchor)
        same = [e for e in evaluations if e.scope is place.scope and e.model_arg == place.model]
        ordered = [e for e in same if self.src.line(e.call) > line] + [
            e for e in same if self.src.line(e.call) <= line
        ]
        for chosen in ordered:
            substitutions = evaluation.arguments_at(
                self.index, chosen, place.scope, line, after=place.where == "after"
            )
            if substitutions is not None:
                return chosen, substitutions
        return None

    def _bf16_needs_a_batch(self, evaluated: bool) -> bool:
        """The runtime converts only the modules it measures faster in bf16; without an
        evaluation, the fit needs a loader to take a batch from (INC converts unmeasured)."""
        return self.approach == "bf16" and not evaluated and self.options.target != "inc"

    def _refuse_bf16_without_a_batch(self, anchor: cst.CSTNode, where: str) -> None:
        line = self.src.line(anchor) + (1 if where == "after" else 0)
        raise AnalysisError(
            "bf16 converts only the modules it measures faster in bf16, which needs a batch: "
            f"no evaluation of the model and no DataLoader is in reach of line {line}, so the "
            "fit would keep the fp32 model",
            path=self.src.path,
            line=line,
            hint="build a DataLoader (or add a function that evaluates the model) before that "
            "line, or use --target inc, which converts without measuring",
        )

    def _loader(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        required: bool = True,
    ) -> str | None:
        line = self.src.line(place.anchor) + (1 if place.where == "after" else 0)
        in_reach = loaders.visible_loaders(self.index, place.scope, line)
        if found is not None:
            chosen, substitutions = found
            for arg in chosen.call.args:
                text = self.src.code(arg.value)
                text = substitutions.get(text, text)
                if text in in_reach:
                    return text
        if in_reach:
            return in_reach[0]
        rebuilt = self._loader_rebuilt(found, place, line)
        if rebuilt is not None:
            return rebuilt
        if not required:
            return None
        what = "benchmarking" if self.approach == "benchmark" else "static quantization"
        own = self._loader_out_of_reach(found, place, line)
        raise AnalysisError(
            f"{what} needs data, but no DataLoader is in reach of line {line} "
            f"({self.index.describe(place.scope)}){own}",
            path=self.src.path,
            line=line,
            hint="build the DataLoader before the model is evaluated"
            + (" (the same builder, called before that line)" if own else "")
            + ("" if self.approach == "benchmark" else ", or use --approach ptq-dynamic"),
        )

    def _loader_rebuilt(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> str | None:
        """The call that builds, at the fit, the loader the evaluation (or a function the
        model is handed to from `line` on) builds inside itself (see loader_rebuild)."""
        for call, fn in self._functions_handed_the_model(found, place, line):
            if self.index.scope_of(call) is not place.scope:
                continue
            rebuilt = loader_rebuild.rebuilt_loader(self.index, call, fn, place.scope, line)
            if rebuilt is not None:
                code, inside = rebuilt
                self.plan.placed.append(
                    f"calib_dataloader: {code}, the loader {fn.key}() builds inside "
                    f"(line {self.src.line(inside)}), built at the fit"
                )
                return code
        return None

    def _functions_handed_the_model(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> list[tuple[cst.Call, Function]]:
        """The evaluation's call and function; without one, the calls of `place.scope` from
        `line` on that hand the model to a function of the project."""
        if found is not None:
            return [(found[0].call, found[0].function)]
        return [
            (call, fn)
            for call in self.index.calls
            if self.index.scope_of(call) is place.scope
            and self.src.line(call) >= line
            and any(self.src.code(a.value) == place.model for a in call.args)
            and (fn := self.index.resolve_call(call)) is not None
        ]

    def _loader_out_of_reach(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> str:
        """`: do_test() builds its own inside (...)` when the evaluation, or a function
        the model is handed to from `line` on, builds its loader where the fit cannot
        reach it (`data_loader = build_detection_test_loader(cfg, name)`)."""
        for _call, fn in self._functions_handed_the_model(found, place, line):
            inside = loaders.loader_built_inside(self.index, fn.node)
            if inside is not None:
                return (
                    f": {fn.key}() builds its own inside ({self.src.code(inside).strip()} at "
                    f"line {self.src.line(inside)}), out of the fit's reach"
                )
        return ""

    def _eval_call(
        self, chosen: evaluation.Evaluation, candidate: str, substitutions: dict[str, str]
    ) -> str:
        params = chosen.function.positional_params()
        args = []
        for position, arg in enumerate(chosen.call.args):
            is_model = (
                arg.keyword.value == chosen.model_param
                if arg.keyword
                else (position < len(params) and params[position] == chosen.model_param)
            )
            if is_model:
                args.append(arg.with_changes(value=cst.Name(candidate)))
                continue
            text = self.src.code(arg.value)
            if text in substitutions:
                arg = arg.with_changes(value=cst.parse_expression(substitutions[text]))
            args.append(arg)
        return self.src.module.code_for_node(chosen.call.with_changes(args=args))

    # -- a Hugging Face Trainer ----------------------------------------------------------------
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
        """Before the first evaluate()/predict() after training; else after training;
        else right after the Trainer is built."""
        src = self.src
        last_train = max((src.line(c) for c in use.train_calls), default=0)
        for call in use.eval_calls:
            if src.line(call) > last_train:
                return src.statement_of(call), "before"
        if use.train_calls:
            return src.statement_of(max(use.train_calls, key=src.line)), "after"
        return use.statement, "after"

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
