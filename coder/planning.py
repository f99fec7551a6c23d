"""From facts and the requested approach to edits, or a refusal with reasons.

Hooks go where DESIGN.md shows: the compression manager is prepared right
before training starts (the model, the loader and the epoch count all exist
there, so the pruning schedule can be fitted to the run), and reaches the
functions that hold the loop through a `compression_manager` parameter (or
`self.compression_manager` inside the same class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from neural_coder.analysis import Facts, TrainingLoop, evaluation
from neural_coder.errors import AnalysisError
from neural_coder.options import OptimizeOptions
from neural_coder.transforms import snippets
from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    AddParameter,
    Edit,
    InsertStatements,
)
from neural_coder.transforms.snippets import Code

CONFIG_CLASSES = {
    "pruning": "WeightPruningConfig",
    "qat": "QuantizationAwareTrainingConfig",
    "distillation": "DistillationConfig",
}
PRUNING_END_FRACTION = 0.8  # prune during the first 80 % of the run, fine-tune the rest


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)  # human lines: what went where
    warnings: list[str] = field(default_factory=list)


class Planner:
    def __init__(self, facts: Facts, options: OptimizeOptions, line_length: int = 88) -> None:
        self.facts = facts
        self.options = options
        self.src = facts.source
        self.index = facts.index
        self.line_length = line_length
        self.plan = Plan()
        taken = {n.value for n in _all_names(self.src.module)}
        self.cm_name = _free("compression_manager", taken)
        self.teacher_name = _free("teacher_model", taken)

    # -- entry ----------------------------------------------------------------------------
    def build(self) -> Plan:
        loop = self.facts.loop
        if loop is None:
            assert self.facts.loop_error is not None
            raise self.facts.loop_error
        techniques = self.options.approach
        cm_of = self._thread_manager(loop)
        entry_cm = cm_of[id(loop.entry_scope)]
        model = loop.model_in_entry

        before_training: list[str] = []
        if "distillation" in techniques:
            before_training.append(self._teacher(model))
        before_training.append(f"{entry_cm} = prepare_compression({model}, {self._configs(loop)})")
        before_training.append(f"{entry_cm}.callbacks.on_train_begin()")
        if "qat" in techniques:
            before_training.append(f"{model} = {entry_cm}.model")
        self._insert(
            loop.entry_loop, "before", before_training, "prepare_compression and on_train_begin"
        )
        self._insert(
            loop.entry_loop, "after", [f"{entry_cm}.callbacks.on_train_end()"], "on_train_end"
        )

        if loop.epoch_loop is not None:
            epoch = loop.epoch_var or "0"
            cm = cm_of[id(loop.entry_scope)]
            self._insert(
                loop.epoch_loop,
                "body_start",
                [f"{cm}.callbacks.on_epoch_begin({epoch})"],
                "on_epoch_begin",
            )
            self._insert(
                loop.epoch_loop, "body_end", [f"{cm}.callbacks.on_epoch_end()"], "on_epoch_end"
            )
        step_cm = cm_of[id(loop.step_scope)]
        self._insert(
            loop.step_loop,
            "body_start",
            [f"{step_cm}.callbacks.on_step_begin({loop.step_index or '0'})"],
            "on_step_begin",
        )
        self._insert(
            loop.step_loop, "body_end", [f"{step_cm}.callbacks.on_step_end()"], "on_step_end"
        )

        inner_cm = cm_of[id(loop.backward_scope)]
        if "distillation" in techniques:
            self._distillation_loss(loop, inner_cm)
        self._insert(
            loop.optimizer_step,
            "before",
            [f"{inner_cm}.callbacks.on_before_optimizer_step()"],
            "on_before_optimizer_step",
        )
        self._insert(
            loop.optimizer_step,
            "after",
            [f"{inner_cm}.callbacks.on_after_optimizer_step()"],
            "on_after_optimizer_step",
        )
        self._imports()
        self.plan.warnings.extend(loop.notes)
        return self.plan

    # -- the manager's way into each function -------------------------------------------------
    def _thread_manager(self, loop: TrainingLoop) -> dict[int, str]:
        """The expression naming the manager in every scope on the training path."""
        entry_cls = self.index.class_of(loop.entry_scope)
        cm_of = {
            id(loop.entry_scope): f"self.{self.cm_name}" if entry_cls is not None else self.cm_name
        }
        for hop in reversed(loop.hops):  # outermost first
            caller_cm = cm_of[id(self.index.scope_of(hop.call))]
            if entry_cls is not None and hop.function.cls is entry_cls:
                cm_of[id(hop.function.node)] = f"self.{self.cm_name}"
                continue
            for call in self.index.call_sites(hop.function):
                if call is not hop.call:
                    raise AnalysisError(
                        f"{hop.function.key}() is also called at line {self.src.line(call)}, where no compression manager exists",
                        path=self.src.path,
                        line=self.src.line(call),
                    )
            self.plan.edits.append(AddParameter(hop.function.node, self.cm_name))
            self.plan.edits.append(AddKeywordArgument(hop.call, self.cm_name, caller_cm))
            self.plan.placed.append(
                f"line {self.src.line(hop.function.node)}: {hop.function.key}() takes {self.cm_name} (passed at line {self.src.line(hop.call)})"
            )
            cm_of[id(hop.function.node)] = self.cm_name
        return cm_of

    # -- snippets ---------------------------------------------------------------------------------
    def _configs(self, loop: TrainingLoop) -> str:
        parts = []
        for technique in self.options.approach:
            if technique == "pruning":
                parts.append(self._pruning_config(loop))
            elif technique == "qat":
                kwargs = (
                    {}
                    if self.options.qat.backend == "default"
                    else {"backend": self.options.qat.backend}
                )
                parts.append(snippets.call(CONFIG_CLASSES["qat"], kwargs))
            else:
                d = self.options.distillation
                criterion = snippets.call(
                    "KnowledgeDistillationLossConfig",
                    {
                        "temperature": d.temperature,
                        "loss_types": list(d.loss_types),
                        "loss_weights": list(d.loss_weights),
                    },
                )
                parts.append(
                    snippets.call(
                        CONFIG_CLASSES["distillation"],
                        {"teacher_model": Code(self.teacher_name), "criterion": Code(criterion)},
                    )
                )
        return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"

    def _pruning_config(self, loop: TrainingLoop) -> str:
        p = self.options.pruning
        start = p.first_step
        if p.end_step is not None:
            end: object = p.end_step
        elif loop.total_steps is not None:
            end = Code(f"max({start}, int({PRUNING_END_FRACTION} * ({loop.total_steps})))")
        else:
            end = start
            self.plan.warnings.append(
                f"the run length could not be read from the script: pruning is one-shot at step {start}; pass --end-step to prune gradually"
            )
        kwargs = {
            "target_sparsity": p.target_sparsity,
            "pattern": p.pattern,
            "pruning_type": p.pruning_type,
            "pruning_scope": p.pruning_scope,
            "start_step": start,
            "end_step": end,
        }
        return snippets.call(CONFIG_CLASSES["pruning"], kwargs)

    def _teacher(self, model: str) -> str:
        teacher = self.options.distillation.teacher
        if teacher is None:
            return f"{self.teacher_name} = copy.deepcopy({model})"
        if self.options.distillation.teacher_is_checkpoint:
            return (
                f"{self.teacher_name} = copy.deepcopy({model})\n"
                f"{self.teacher_name}.load_state_dict(torch.load({teacher!r}, weights_only=True))"
            )
        try:
            cst.parse_expression(teacher)
        except cst.ParserSyntaxError:
            raise AnalysisError(
                f"--teacher {teacher!r} is neither a checkpoint path (.pt/.pth/.bin) nor a Python expression"
            ) from None
        return f"{self.teacher_name} = {teacher}"

    def _distillation_loss(self, loop: TrainingLoop, cm: str) -> None:
        if loop.loss_statement is None or loop.model_output is None or loop.model_inputs is None:
            raise AnalysisError(
                "distillation needs the model's inputs and outputs next to the loss, "
                "but the model call is not assigned to a name before the loss",
                path=self.src.path,
                line=self.src.line(loop.loss_statement or loop.backward),
                hint="assign the model's output first (output = model(x); loss = criterion(output, y))",
            )
        code = f"{loop.loss_name} = {cm}.callbacks.on_after_compute_loss({loop.model_inputs}, {loop.model_output}, {loop.loss_name})"
        self._insert(loop.loss_statement, "after", [code], "on_after_compute_loss")

    def _imports(self) -> None:
        modules = snippets.RUNTIME_MODULES[self.options.target]
        edits = self.plan.edits
        edits.append(AddImport(modules["training"], "prepare_compression"))
        for technique in self.options.approach:
            edits.append(AddImport(modules["config"], CONFIG_CLASSES[technique]))
        if "distillation" in self.options.approach:
            edits.append(AddImport(modules["config"], "KnowledgeDistillationLossConfig"))
            if (
                self.options.distillation.teacher is None
                or self.options.distillation.teacher_is_checkpoint
            ):
                edits.append(AddImport("copy"))
            if self.options.distillation.teacher_is_checkpoint:
                edits.append(AddImport("torch"))

    def _insert(self, anchor: cst.CSTNode, where: str, lines: list[str], what: str) -> None:
        column = self.src.positions[anchor].start.column  # type: ignore[attr-defined]
        indent = column + (4 if where.startswith("body") else 0)
        code = snippets.format_code("\n".join(lines) + "\n", self.line_length - indent)
        self.plan.edits.append(InsertStatements(anchor, where, code))  # type: ignore[arg-type]
        position = {
            "before": "before",
            "after": "after",
            "body_start": "first in",
            "body_end": "last in",
        }[where]
        kind = "loop" if where.startswith("body") else "the statement"
        self.plan.placed.append(f"{what}: {position} {kind} at line {self.src.line(anchor)}")


def _all_names(module: cst.Module) -> list[cst.Name]:
    import libcst.matchers as m

    return list(m.findall(module, m.Name()))  # type: ignore[arg-type]


def _free(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    candidate = f"nc_{name}"
    number = 2
    while candidate in taken:
        candidate = f"nc_{name}_{number}"
        number += 1
    return candidate


QUANT_APPROACHES = {"ptq-static": "static", "ptq-dynamic": "dynamic", "ptq-auto": "auto"}


class PostTrainingPlanner(Planner):
    """`fit` after the model (and, after training if the script trains) and before
    the model is evaluated; the quantized model replaces the fp32 one."""

    def build(self) -> Plan:
        approach = self.options.approach[0]
        evaluations = evaluation.find_evaluations(self.index)
        model, anchor, where, scope = self._placement(evaluations)
        anchor_line = self.src.line(anchor)
        chosen = next((e for e in evaluations if e.scope is scope and e.model_arg == model), None)
        taken = {n.value for n in _all_names(self.src.module)}
        quantized = _free("quantized_model", taken)
        candidate = _free("candidate", taken)
        kwargs: dict[str, object] = {}
        if approach in QUANT_APPROACHES and QUANT_APPROACHES[approach] != "dynamic":
            loader = self._calibration_loader(chosen, scope, anchor_line)
            kwargs["calib_dataloader"] = Code(loader)
        if chosen is not None:
            kwargs["eval_func"] = Code(f"lambda {candidate}: {self._eval_call(chosen, candidate)}")
            self.plan.placed.append(
                f"eval_func: {chosen.function.key}() as called at line {self.src.line(chosen.call)}; "
                f"accuracy-aware tuning ({self.options.ptq.criterion} loss <= {self.options.ptq.tolerable_loss})"
            )
        else:
            self.plan.warnings.append(
                "no evaluation function takes the model: it is converted once, without accuracy tuning"
            )
        module = "quantization" if approach in QUANT_APPROACHES else "mix_precision"
        call = snippets.call(
            f"{module}.fit",
            kwargs,
            args=[Code(model), Code(self._config(approach, chosen is not None))],
        )
        lines = [
            f"{quantized} = {call}",
            f"{model} = {quantized} if {quantized} is not None else {model}",
        ]
        self._insert(anchor, where, lines, f"{module}.fit")
        self._ptq_imports(approach, chosen is not None)
        return self.plan

    def _placement(
        self, evaluations: list[evaluation.Evaluation]
    ) -> tuple[str, cst.CSTNode, str, object]:
        loop = self.facts.loop
        if loop is not None:  # quantize the trained model, right after training
            return loop.model_in_entry, loop.entry_loop, "after", loop.entry_scope
        if evaluations:
            first = evaluations[0]
            line = self.src.line(first.call)
            if evaluation.model_assignment(self.index, first.model_arg, first.scope, line) is None:
                raise AnalysisError(
                    f"{first.model_arg} is evaluated at line {line} but not built in {self.index.describe(first.scope)}",
                    path=self.src.path,
                    line=line,
                    hint="mark the model's assignment with '# neural-coder: model'",
                )
            return first.model_arg, first.statement, "before", first.scope
        models = [
            f for f in self.facts.found if f.kind == "model" and f.target and "." not in f.target
        ]
        if len(models) != 1:
            raise AnalysisError(
                "no evaluation function takes the model, and "
                + (
                    "no model was found"
                    if not models
                    else f"{len(models)} models are built ({', '.join(m.target or '' for m in models)})"
                ),
                path=self.src.path,
                hint="add a function that evaluates the model and returns a metric, or keep one model per file",
            )
        target = models[0].target or ""
        assignment = next(
            a
            for a in self.index.assignments[target]
            if self.src.line(a.statement) == models[0].line
        )
        return target, assignment.statement, "after", assignment.scope

    def _calibration_loader(
        self, chosen: evaluation.Evaluation | None, scope: object, line: int
    ) -> str:
        loaders = evaluation.loaders_in(self.index, scope, line + 1)  # type: ignore[arg-type]
        if chosen is not None:
            for arg in chosen.call.args:
                text = self.src.code(arg.value)
                if text in loaders:
                    return text
        if loaders:
            return loaders[0]
        raise AnalysisError(
            "static quantization needs calibration data, but no DataLoader is built before the model is used",
            path=self.src.path,
            line=line,
            hint="use --approach ptq-dynamic, or build the DataLoader before the model is evaluated",
        )

    def _eval_call(self, chosen: evaluation.Evaluation, candidate: str) -> str:
        params = chosen.function.positional_params()
        args = []
        for position, arg in enumerate(chosen.call.args):
            is_model = (
                arg.keyword.value == chosen.model_param
                if arg.keyword
                else (position < len(params) and params[position] == chosen.model_param)
            )
            args.append(arg.with_changes(value=cst.Name(candidate)) if is_model else arg)
        return self.src.module.code_for_node(chosen.call.with_changes(args=args))

    def _config(self, approach: str, tuned: bool) -> str:
        p = self.options.ptq
        kwargs: dict[str, object] = {}
        if approach in QUANT_APPROACHES:
            kwargs["approach"] = QUANT_APPROACHES[approach]
            if approach != "ptq-dynamic":
                kwargs["calibration_sampling_size"] = [p.calibration_sampling_size]
        if tuned:
            kwargs["accuracy_criterion"] = Code(
                snippets.call(
                    "AccuracyCriterion",
                    {"criterion": p.criterion, "tolerable_loss": float(p.tolerable_loss)},
                )
            )
            kwargs["tuning_criterion"] = Code(
                snippets.call("TuningCriterion", {"max_trials": p.max_trials})
            )
        name = "PostTrainingQuantConfig" if approach in QUANT_APPROACHES else "MixedPrecisionConfig"
        return snippets.call(name, kwargs)

    def _ptq_imports(self, approach: str, tuned: bool) -> None:
        package = (
            "neural_coder.runtime" if self.options.target == "runtime" else "neural_compressor"
        )
        config = f"{package}.config"
        edits = self.plan.edits
        if approach in QUANT_APPROACHES:
            edits += [
                AddImport(package, "quantization"),
                AddImport(config, "PostTrainingQuantConfig"),
            ]
        else:
            edits += [
                AddImport(package, "mix_precision"),
                AddImport(config, "MixedPrecisionConfig"),
            ]
        if tuned:
            edits += [AddImport(config, "AccuracyCriterion"), AddImport(config, "TuningCriterion")]


def make_plan(facts: Facts, options: OptimizeOptions, line_length: int = 88) -> Plan:
    planner = PostTrainingPlanner if options.post_training else Planner
    return planner(facts, options, line_length).build()
