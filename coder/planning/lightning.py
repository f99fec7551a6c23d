"""Training-time compression for a script that trains with PyTorch Lightning.

Lightning runs the loop, so the hooks reach it through the runtime's Lightning
`CompressionCallback`:

* `trainer.fit(model, ...)` (a Trainer, or `cli.trainer` of `LightningCLI(run=False)`):
  the manager is prepared on the module right before the fit, and the callback is
  appended to `trainer.callbacks` there (so it works wherever the Trainer was built,
  `Trainer.from_argparse_args` included);
* `LightningCLI(Model, ...)` that runs `fit` itself: the module is built inside the
  CLI, so the callback gets the configs and prepares the manager on the module the
  Trainer fits; it goes into `trainer_defaults={"callbacks": [...]}`.

A post-training approach alone is planned by `lightning_post_training` (dynamic
quantization after `trainer.fit`); a pipeline that trains then fits is refused:
the fit would need the module the callback compressed, routed back into the Trainer.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.lightning import (
    LightningCLIRun,
    LightningFit,
    LightningUse,
    built_by_cli,
    is_trainer_build,
)
from neural_coder.errors import AnalysisError
from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    ReplaceArgumentValue,
    ReplaceExpression,
)

from .base import PRUNING_END_FRACTION, BasePlanner, Plan

LIGHTNING_INTEGRATION = "neural_coder.runtime.integrations.lightning"


class LightningPlanner(BasePlanner):
    # Lightning's checkpoints (ckpt_path="best") hold the unshrunk shapes: shrink only on --shrink
    shrink_by_default = False

    def build(self) -> Plan:
        use = self.facts.lightning
        assert use is not None
        if self.options.then_fit is not None:
            self._refuse_post_training(use)
        if self.options.staged:
            node = use.first_line_node
            raise AnalysisError(
                f"{self.options.name!r} runs its stages over the epochs of a hand-written "
                f"training loop; PyTorch Lightning runs its own (line {self.src.line(node)})",
                path=self.src.path,
                line=self.src.line(node),
                hint="compress in one shot (--approach " + "+".join(self.options.approach) + ")",
            )
        if len(use.fits) + len(use.cli_runs) > 1:
            lines = ", ".join(str(self.src.line(x.call)) for x in [*use.fits, *use.cli_runs])
            raise AnalysisError(
                f"several Lightning trainings (lines {lines})",
                path=self.src.path,
                line=self.src.line(use.first_line_node),
                hint="run the tool on a file with one Trainer.fit / LightningCLI",
            )
        fit_schedule = (
            "pruning" in self.options.approach
            and self.options.pruning.end_step is None
            and self.options.recipe is None
        )
        until = f", prune_until={PRUNING_END_FRACTION}" if fit_schedule else ""
        if use.fits:
            self._fit(use.fits[0], until)
        else:
            self._cli(use.cli_runs[0], until)
        if fit_schedule:
            self.plan.placed.append(
                f"pruning ends at {PRUNING_END_FRACTION:.0%} of the run's optimizer steps "
                "(Lightning's estimate, set when training starts)"
            )
        self._warn_best_checkpoint(use)
        if "qat" in self.options.approach:
            self.plan.warnings.append(
                "Lightning keeps the fake-quantized module after training (its observers frozen, "
                "so trainer.validate/test measure the int8 quantization); the int8 model is "
                "the compression manager's .model"
            )
        self.training_imports()
        unused = set()
        if not use.fits and self.options.target != "inc":  # the callback prepares the manager
            unused.add(("neural_coder", "prepare_compression"))
        teacher = self.options.distillation.teacher
        if teacher is not None and teacher.endswith(".ckpt"):  # load_from_checkpoint, no copy
            unused.add(("copy", None))
        self.plan.edits = [
            e
            for e in self.plan.edits
            if not (
                isinstance(e, AddImport)
                and any(e.module.startswith(m) and e.name == n for m, n in unused)
            )
        ]
        self.plan.edits.append(AddImport(LIGHTNING_INTEGRATION, "CompressionCallback"))
        return self.plan

    def _fit(self, fit: LightningFit, until: str) -> None:
        model = fit.model
        line = self.src.line(fit.call)
        if model is None or not isinstance(model, cst.Name | cst.Attribute):
            what = (
                "no module"
                if model is None
                else f"a module built inside the call ({self.src.code(model)})"
            )
            raise AnalysisError(
                f"{fit.trainer}.fit at line {line} is given {what}",
                path=self.src.path,
                line=line,
                hint="assign the LightningModule to a name first: model = LitModel(...); trainer.fit(model, ...)",
            )
        name = self.src.code(model)
        self.refuse_peft_weights(name, fit.scope)
        self._check_precision()
        cm = self.cm_name
        lines = []
        if "distillation" in self.options.approach:
            lines.append(self._teacher(name, fit))
        lines.append(f"{cm} = prepare_compression({name}, {self.configs('')})")
        lines.append(f"{fit.trainer}.callbacks.append(CompressionCallback({cm}{until}))")
        self.insert(fit.statement, "before", lines, "prepare_compression and CompressionCallback")

    def _teacher(self, name: str, fit: LightningFit) -> str:
        teacher = self.options.distillation.teacher
        if built_by_cli(self.index, fit) and (
            teacher is None or teacher.endswith((".pt", ".pth", ".bin"))
        ):
            line = self.src.line(fit.call)
            raise AnalysisError(
                f"distillation needs a teacher: the LightningCLI builds {name} from its "
                "class's constructor, so a frozen copy of it would be untrained and teach nothing",
                path=self.src.path,
                line=line,
                hint="pass a teacher: --teacher path/to/teacher.ckpt (a Lightning checkpoint of "
                "the model class) or --teacher 'LitModel.load_from_checkpoint(\"t.ckpt\")'; "
                f"--teacher copy when {name} does hold trained weights there",
            )
        if teacher is not None and teacher.endswith(".ckpt"):
            self.plan.placed.append(f"teacher: type({name}).load_from_checkpoint({teacher!r})")
            return f"{self.teacher_name} = type({name}).load_from_checkpoint({teacher!r})"
        return self.teacher(name, fit.scope, fit.statement)

    def _cli(self, run: LightningCLIRun, until: str) -> None:
        line = self.src.line(run.call)
        if "distillation" in self.options.approach:
            teacher = self.options.distillation.teacher
            if (
                teacher is None
                or self.options.distillation.teacher_is_copy
                or teacher.endswith((".pt", ".pth", ".bin"))
            ):
                raise AnalysisError(
                    f"LightningCLI at line {line} builds the module and runs fit itself, so "
                    "there is no trained module in the script to copy as a teacher",
                    path=self.src.path,
                    line=line,
                    hint="pass a teacher: --teacher path/to/teacher.ckpt (a Lightning checkpoint "
                    "of the model class) or --teacher 'LitModel.load_from_checkpoint(\"t.ckpt\")'",
                )
        callback = self.free_name("compression_callback")
        lines = []
        if "distillation" in self.options.approach:
            lines.append(self._cli_teacher(run))
        if self.options.target == "inc":  # INC's configs need INC's prepare_compression
            until += ", prepare=prepare_compression"
        lines.append(f"{callback} = CompressionCallback(configs={self.configs('')}{until})")
        self.insert(run.statement, "before", lines, "CompressionCallback")
        self._add_to_trainer_defaults(run, callback)

    def _cli_teacher(self, run: LightningCLIRun) -> str:
        teacher = self.options.distillation.teacher
        assert teacher is not None
        if teacher.endswith(".ckpt"):
            model_class = run.call.args[0].value if run.call.args else None
            if model_class is None or run.call.args[0].keyword is not None:
                raise AnalysisError(
                    f"LightningCLI at line {self.src.line(run.call)} names no model class to "
                    "load the teacher checkpoint with",
                    path=self.src.path,
                    line=self.src.line(run.call),
                    hint="--teacher 'LitModel.load_from_checkpoint(\"t.ckpt\")'",
                )
            return f"{self.teacher_name} = {self.src.code(model_class)}.load_from_checkpoint({teacher!r})"
        return f"{self.teacher_name} = {teacher}"

    def _add_to_trainer_defaults(self, run: LightningCLIRun, callback: str) -> None:
        arg = run.trainer_defaults
        where = f"trainer_defaults of the LightningCLI at line {self.src.line(run.call)}"
        if arg is None:
            self.plan.edits.append(
                AddKeywordArgument(run.call, "trainer_defaults", f'{{"callbacks": [{callback}]}}')
            )
            self.plan.placed.append(f"CompressionCallback: {where}")
            return
        value = arg.value
        if isinstance(value, cst.Dict) and not any(
            isinstance(e, cst.StarredDictElement) for e in value.elements
        ):
            for element in value.elements:
                assert isinstance(element, cst.DictElement)
                key = element.key
                if isinstance(key, cst.SimpleString) and key.evaluated_value == "callbacks":
                    self._append_callback(element.value, callback)
                    self.plan.placed.append(f"CompressionCallback: callbacks in the {where}")
                    return
            self.plan.edits.append(
                ReplaceExpression(value, self._appended(value, f'"callbacks": [{callback}]'))
            )
            self.plan.placed.append(f"CompressionCallback: {where}")
            return
        code = self.src.code(value)
        self.plan.edits.append(
            ReplaceArgumentValue(
                arg,
                f'{{**({code}), "callbacks": [*({code}).get("callbacks", []), {callback}]}}',
            )
        )
        self.plan.placed.append(f"CompressionCallback: {where}")

    def _append_callback(self, value: cst.BaseExpression, callback: str) -> None:
        if isinstance(value, cst.List) and not any(
            isinstance(e, cst.StarredElement) for e in value.elements
        ):
            self.plan.edits.append(ReplaceExpression(value, self._appended(value, callback)))
            return
        code = self.src.code(value)
        self.plan.edits.append(ReplaceExpression(value, f"[*({code} or []), {callback}]"))

    def _appended(self, value: cst.List | cst.Dict, item: str) -> str:
        """The code of the list or dict literal `value` with `item` as its last element, laid
        out as the literal is (one line, or one element a line with a trailing comma)."""
        code = self.src.code(value)
        close = code.rindex("]" if isinstance(value, cst.List) else "}")
        body, tail = code[:close].rstrip(), code[close:]
        if not value.elements:
            return f"{body}{item}{tail}"
        if "\n" not in code:
            return f"{body}{'' if body.endswith(',') else ','} {item}{tail}"
        # the code of a node is indented relative to its block: take the element lines' indent
        inner = [line for line in code.split("\n")[1:] if line.strip()]
        column = len(inner[0]) - len(inner[0].lstrip()) if inner else 4
        closing = code[code.rindex("\n", 0, close) + 1 : close]
        closing = closing if not closing.strip() else ""
        separator = "" if body.endswith(",") else ","
        return f"{body}{separator}\n{' ' * column}{item},\n{closing}{tail}"

    def _warn_best_checkpoint(self, use: LightningUse) -> None:
        """`trainer.test(ckpt_path="best")` evaluates the best checkpoint, which may predate
        the end of the pruning schedule."""
        if "pruning" not in self.options.approach:
            return
        for call in use.evaluations:
            for arg in call.args:
                if (
                    arg.keyword is not None
                    and arg.keyword.value == "ckpt_path"
                    and self.src.code(arg.value).strip("'\"") == "best"
                ):
                    self.plan.warnings.append(
                        f"line {self.src.line(call)}: ckpt_path='best' evaluates the best "
                        "checkpoint, which may have been saved before pruning reached its "
                        "target sparsity; evaluate the last one (ckpt_path='last') or set --end-step"
                    )
                    return

    def _check_precision(self) -> None:
        """QAT's observers take fp32 activations: a Trainer built with precision="16-mixed"/"bf16..."."""
        if "qat" not in self.options.approach:
            return
        for call in self.index.calls:
            if not is_trainer_build(self.index, call):
                continue
            for arg in call.args:
                if arg.keyword is None or arg.keyword.value != "precision":
                    continue
                if not isinstance(arg.value, cst.SimpleString | cst.Integer):
                    continue
                text = self.src.code(arg.value).strip("'\"")
                if text.startswith(("16", "bf16")):
                    line = self.src.line(arg)
                    true_half = text.endswith("-true")
                    self.qat_needs_fp32(
                        f"the Lightning Trainer trains in "
                        f"{'half' if true_half else 'mixed'} precision (precision={text!r} at line {line})",
                        line,
                        None,
                        "drop precision= for QAT",
                        half_weights=true_half,
                    )

    def _refuse_post_training(self, use: LightningUse) -> None:
        node = use.first_line_node
        raise AnalysisError(
            f"PyTorch Lightning trains and evaluates the module here (line {self.src.line(node)}): "
            "a pipeline that trains then runs a post-training fit is not supported under "
            "Lightning yet (a post-training approach alone is, after trainer.fit)",
            path=self.src.path,
            line=self.src.line(node),
            hint="train with the training approach here (qat, pruning, distillation), then "
            "quantize the trained checkpoint in a script of its own, or use --approach "
            "ptq-dynamic alone",
        )
