"""Training-time compression for a script that trains with a Hugging Face `Trainer`.

The manager is prepared on the bare model right before the Trainer is built and
reaches the Trainer's loop through the runtime's `CompressionCallback` (merged
into the `callbacks` the script passes, or added with `add_callback` when the
Trainer class cannot take that argument). Distillation also needs the loss:
`with_distillation(trainer, manager)` wraps the Trainer's `compute_loss`. The
Trainer keeps the bare model (it reads the model's forward signature), so the
script's own `model` is not replaced.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import MARKER_TRAIN
from neural_coder.analysis.trainer import TrainerUse, step_without_compute_loss
from neural_coder.errors import AnalysisError
from neural_coder.transforms.edits import AddImport, AddKeywordArgument, ReplaceArgumentValue

from .base import PRUNING_END_FRACTION, BasePlanner, Plan

#: keywords by which a distillation Trainer subclass takes its teacher
TEACHER_KEYWORDS = ("teacher_model", "teacher")


class TrainerPlanner(BasePlanner):
    # save_pretrained writes a config with the original sizes: shrinking only on --shrink
    shrink_by_default = False

    def build(self) -> Plan:
        use = self._trainer()
        self.warn_guessed_trainer(use)
        if self.options.staged:
            raise AnalysisError(
                f"{self.options.name!r} runs its stages over the epochs of a hand-written training "
                f"loop; the {use.class_name} at line {self.src.line(use.call)} runs its own",
                path=self.src.path,
                line=self.src.line(use.call),
                hint="compress in one shot (--approach "
                + "+".join(self.options.approach)
                + "), or one training stage before a fit (e.g. pruning>ptq-static)",
            )
        if self._model_id(use) is not None:
            return self._build_for_model_id(use)
        techniques = self.options.approach
        model = self._model(use)
        self.refuse_peft_weights(model, use.scope)
        if "qat" in techniques:
            self._check_mixed_precision(use)
        if "pruning" in techniques:
            self._refuse_pruning_under_schedule_free(use)
        cm = self.cm_name

        before = []
        if "distillation" in techniques:
            self._target(use, "distil")  # a Trainer that cannot be reached is the first refusal
            self._refuse_own_distillation(use, model)
            self._refuse_step_that_skips_compute_loss(use)
            before.append(self.teacher(model, use.scope, use.statement))
        # "": the callback fits the pruning schedule to the Trainer's run length
        before.append(f"{cm} = prepare_compression({model}, {self.configs('')})")
        self.insert(use.statement, "before", before, "prepare_compression")

        fit_schedule = (
            "pruning" in techniques
            and self.options.pruning.end_step is None
            and self.options.recipe is None
        )
        callback = f"CompressionCallback({cm}" + (
            f", prune_until={PRUNING_END_FRACTION})" if fit_schedule else ")"
        )
        self._attach(use, callback, cm, fit_schedule)
        return self.plan

    def _refuse_own_distillation(self, use: TrainerUse, model: str) -> None:
        """A distillation Trainer (`DistillationTrainer(student, args, teacher_model=teacher)`)
        already distils in its own compute_loss: a second, default teacher (a copy of the
        student) would be wrong, and adding the runtime's loss to the script's is a choice
        the user makes by naming the teacher."""
        if (
            self.options.distillation.teacher is not None
            or self.options.distillation.teacher_is_copy
        ):
            return
        for arg in use.call.args:
            if arg.keyword is not None and arg.keyword.value in TEACHER_KEYWORDS:
                teacher = self.src.code(arg.value)
                line = self.src.line(arg)
                raise AnalysisError(
                    f"the {use.class_name} at line {self.src.line(use.call)} already distils "
                    f"{model} from its teacher ({arg.keyword.value}={teacher} at line {line})",
                    path=self.src.path,
                    line=line,
                    hint="the script distils as it is: compress its student with --approach qat "
                    "or pruning (its own distillation loss stays), or add the runtime's "
                    f"distillation loss to it with --teacher {teacher}",
                )

    def _refuse_step_that_skips_compute_loss(self, use: TrainerUse) -> None:
        """with_distillation adds the distillation loss in compute_loss: a training_step
        override that computes its loss itself would train without it."""
        step = step_without_compute_loss(self.index, use.class_name, use.call)
        if step is None:
            return
        line = self.src.line(step)
        raise AnalysisError(
            f"{use.class_name}.training_step at line {line} computes its loss without "
            "self.compute_loss, where the distillation loss is added: the run would "
            "train without the teacher",
            path=self.src.path,
            line=line,
            hint="compute the loss with self.compute_loss(model, inputs) in training_step, "
            "or compress with --approach qat or pruning (they do not need compute_loss)",
        )

    def _attach(self, use: TrainerUse, callback: str, cm: str, fit_schedule: bool) -> None:
        """The callback into the Trainer, distillation's compute_loss, the imports."""
        techniques = self.options.approach
        after = []
        if use.callbacks is not None:
            self.plan.edits.append(
                ReplaceArgumentValue(use.callbacks, self._merged(use.callbacks, callback))
            )
            self.plan.placed.append(
                f"CompressionCallback: added to callbacks= at line {self.src.line(use.call)}"
            )
        elif use.accepts_callbacks:
            self.plan.edits.append(AddKeywordArgument(use.call, "callbacks", f"[{callback}]"))
            self.plan.placed.append(
                f"CompressionCallback: callbacks= of the Trainer at line {self.src.line(use.call)}"
            )
        else:
            after.append(f"{self._target(use, 'add the callback')}.add_callback({callback})")
        if "distillation" in techniques:
            after.append(f"with_distillation({self._target(use, 'distil')}, {cm})")
        if after:
            self.insert(use.statement, "after", after, "Trainer integration")
        if fit_schedule:
            self.plan.placed.append(
                f"pruning ends at {PRUNING_END_FRACTION:.0%} of the Trainer's optimizer steps (set when training starts)"
            )
        if "qat" in techniques:
            self.plan.warnings.append(
                f"the Trainer keeps training the fake-quantized model; after training, {cm}.model is the int8 model"
            )
        self.training_imports()
        module = self.modules["transformers"]
        self.plan.edits.append(AddImport(module, "CompressionCallback"))
        if "distillation" in techniques:
            self.plan.edits.append(AddImport(module, "with_distillation"))

    def _model_id(self, use: TrainerUse) -> str | None:
        """The Trainer is given a model id or path (TRL's `SFTTrainer(model="org/name")`,
        `model=model_args.model_name_or_path`), or a `model_init` (the Trainer calls it
        again for every run): it builds the model itself."""
        model = use.model
        if model is None or (isinstance(model, cst.Name) and model.value == "None"):
            init = _model_init(use.call)
            return None if init is None else f"model_init={self.src.code(init)}"
        if model is None:
            return None
        if isinstance(model, cst.SimpleString | cst.FormattedString | cst.ConcatenatedString):
            return self.src.code(model)
        if isinstance(model, cst.Name | cst.Attribute):
            last = self.src.code(model).split(".")[-1].lower()
            if last.endswith(("name_or_path", "model_name", "model_id", "model_path")):
                return self.src.code(model)
            leaves = [leaf for leaf, _ in self.index.values_of(model, use.scope)]
            if leaves and all(
                isinstance(leaf, cst.SimpleString | cst.FormattedString) for leaf in leaves
            ):
                return self.src.code(model)
        return None

    def _build_for_model_id(self, use: TrainerUse) -> Plan:
        """The Trainer builds the model from an id: the callback gets the configs and prepares
        the manager on the model the Trainer holds once it is built (on_init_end)."""
        techniques = self.options.approach
        model_id = self._model_id(use)
        line = self.src.line(use.call)
        if "qat" in techniques:
            self._check_mixed_precision(use)
        if "distillation" in techniques:
            self._refuse_own_distillation(use, model_id)
        if "distillation" in techniques and model_id.startswith("model_init="):
            raise AnalysisError(
                f"the {use.class_name} at line {line} builds a new model with {model_id} for "
                "every run, and distillation's loss is bound to the model prepared first",
                path=self.src.path,
                line=line,
                hint="build the model first and pass model=model for distillation; "
                "qat and pruning work with model_init",
            )
        if "distillation" in techniques:
            teacher = self.options.distillation.teacher
            if (
                teacher is None
                or self.options.distillation.teacher_is_copy
                or self.options.distillation.teacher_is_checkpoint
            ):
                raise AnalysisError(
                    f"the {use.class_name} at line {line} builds the model from {model_id} "
                    "itself, so there is no model in the script to copy as a teacher",
                    path=self.src.path,
                    line=line,
                    hint="pass a teacher that builds one: --teacher "
                    "'AutoModelForCausalLM.from_pretrained(\"org/teacher\")'",
                )
            self._refuse_step_that_skips_compute_loss(use)
        weight = [t for t in techniques if t in ("pruning", "qat")]
        for arg in use.call.args:
            if (
                weight
                and arg.keyword is not None
                and arg.keyword.value
                in (
                    "peft_config",
                    "quantization_config",
                )
            ):
                self.plan.warnings.append(
                    f"line {self.src.line(arg)}: {arg.keyword.value}= is given to the "
                    f"{use.class_name}: when it is set, {' and '.join(weight)} is refused at run "
                    "time (adapters or 4/8-bit weights leave no float weights to compress)"
                )
        callback_name = self.free_name("compression_callback")
        fit_schedule = (
            "pruning" in techniques
            and self.options.pruning.end_step is None
            and self.options.recipe is None
        )
        extra = f", prune_until={PRUNING_END_FRACTION}" if fit_schedule else ""
        if self.options.target == "inc":
            extra += ", prepare=prepare_compression"
        before = []
        if "distillation" in techniques:
            before.append(f"{self.teacher_name} = {self.options.distillation.teacher}")
        before.append(f"{callback_name} = CompressionCallback(configs={self.configs('')}{extra})")
        self.insert(use.statement, "before", before, "CompressionCallback with the configs")
        when = (
            "(when the Trainer is built, and again on the model each train() builds)"
            if model_id.startswith("model_init=")
            else "(when the Trainer is built)"
        )
        self.plan.placed.append(
            f"the manager is prepared on the model the {use.class_name} builds from {model_id} "
            + when
        )
        self._attach(use, callback_name, f"{callback_name}.compression_manager", fit_schedule)
        if self.options.target != "inc":
            self.plan.edits = [
                e
                for e in self.plan.edits
                if not (isinstance(e, AddImport) and e.name == "prepare_compression")
            ]
        return self.plan

    def _refuse_pruning_under_schedule_free(self, use: TrainerUse) -> None:
        """`TrainingArguments(optim="schedule_free_adamw")`: the Trainer swaps the weights
        with the optimizer's average at eval (optimizer.eval()), which undoes the masks
        (planning/schedule_free.py)."""
        for arg in self._training_arguments(use, ("optim",)):
            value = arg.value
            if isinstance(value, cst.SimpleString) and "schedule_free" in value.value:
                line = self.src.line(arg)
                raise AnalysisError(
                    f"the Trainer trains with a schedule-free optimizer (optim={value.value} at "
                    f"line {line}): its eval() / train() swap every weight with an average it "
                    "keeps itself, which undoes the pruning masks",
                    path=self.src.path,
                    line=line,
                    hint="prune with another optim (the default adamw_torch); qat, distillation "
                    "and the post-training approaches work as the script is",
                )

    def _training_arguments(self, use: TrainerUse, names: tuple[str, ...]) -> list[cst.Arg]:
        """The keyword arguments `names` of the TrainingArguments the Trainer is given."""
        if use.args is None:
            return []
        return [
            arg
            for leaf, _ in self.index.values_of(use.args, use.scope)
            if isinstance(leaf, cst.Call)
            for arg in leaf.args
            if arg.keyword is not None and arg.keyword.value in names
        ]

    def _check_mixed_precision(self, use: TrainerUse) -> None:
        """`bf16=True` or `fp16=True` in the TrainingArguments trains under autocast."""
        for arg in self._training_arguments(use, ("bf16", "fp16")):
            assert arg.keyword is not None
            flag = f"{arg.keyword.value}={self.src.code(arg.value)}"
            line = self.src.line(arg)
            self.qat_needs_fp32(
                f"the Trainer trains in mixed precision ({flag} at line {line})",
                line,
                arg.value,
                f"drop {flag} for QAT",
            )

    def _trainer(self) -> TrainerUse:
        trained = [u for u in self.facts.trainers if u.train_calls]
        if len(trained) > 1:
            marked = [u for u in trained if self._marked(u)]
            if len(marked) != 1:
                lines = ", ".join(str(self.src.line(u.call)) for u in trained)
                raise AnalysisError(
                    f"several Trainers are trained (built at lines {lines})"
                    + (f", {len(marked)} of them marked '# {MARKER_TRAIN}'" if marked else ""),
                    path=self.src.path,
                    line=self.src.line(trained[-1].call),
                    hint=f"mark the .train() call of the one to compress with '# {MARKER_TRAIN}', "
                    "or run the tool on a file with one Trainer",
                )
            self.plan.warnings += [
                f"line {self.src.line(u.call)}: a Trainer not marked '# {MARKER_TRAIN}' "
                "trains without compression"
                for u in trained
                if u is not marked[0]
            ]
            trained = marked
        if not trained:
            use = self.facts.trainers[0]
            raise AnalysisError(
                f"the {use.class_name} built at line {self.src.line(use.call)} is never trained "
                "(no .train() call on it in the same function)",
                path=self.src.path,
                line=self.src.line(use.call),
                hint="for a trained model use a post-training approach (ptq-static, ptq-dynamic, bf16)",
            )
        return trained[0]

    def _marked(self, use: TrainerUse) -> bool:
        """`# neural-coder: train` on the line of the Trainer or of one of its .train() calls."""
        return any(MARKER_TRAIN in self.src.line_text(n) for n in (use.call, *use.train_calls))

    def _model(self, use: TrainerUse) -> str:
        model = use.model
        if model is None or (isinstance(model, cst.Name) and model.value == "None"):
            raise AnalysisError(
                f"the {use.class_name} at line {self.src.line(use.call)} is given no model "
                "(model_init builds a new one per run)",
                path=self.src.path,
                line=self.src.line(use.call),
                hint="build the model first and pass model=model",
            )
        if not isinstance(model, cst.Name | cst.Attribute):
            raise AnalysisError(
                f"the model passed to the {use.class_name} at line {self.src.line(use.call)} "
                f"is built inside the call ({self.src.code(model)})",
                path=self.src.path,
                line=self.src.line(use.call),
                hint="assign the model to a name first (model = ...; Trainer(model=model, ...))",
            )
        return self.src.code(model)

    def _target(self, use: TrainerUse, purpose: str) -> str:
        if use.target is None:
            raise AnalysisError(
                f"the {use.class_name} at line {self.src.line(use.call)} is not assigned to a name, "
                f"so the tool cannot {purpose}",
                path=self.src.path,
                line=self.src.line(use.call),
                hint="assign it first: trainer = Trainer(...); trainer.train()",
            )
        return use.target

    def _merged(self, arg: cst.Arg, callback: str) -> str:
        value = arg.value
        if isinstance(value, cst.List) and not any(
            isinstance(e, cst.StarredElement) for e in value.elements
        ):
            items = [self.src.code(e.value) for e in value.elements]
            return "[" + ", ".join([*items, callback]) + "]"
        return f"[*({self.src.code(value)} or []), {callback}]"


def _model_init(call: cst.Call) -> cst.BaseExpression | None:
    """The `model_init=` a Trainer is given, unless None."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "model_init":
            value = arg.value
            return None if isinstance(value, cst.Name) and value.value == "None" else value
    return None
