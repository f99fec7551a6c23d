"""Post-training quantization and bf16 for a script that trains with `Trainer.fit` (Lightning).

The fit goes right after `trainer.fit(model, ...)`; its eval_func is the script's
own `trainer.validate` / `trainer.test` of the module that follows (through the
runtime's `lightning_eval_func`, which picks the logged metric at run time), and
the int8 / bf16 LightningModule replaces the name the script goes on with, so that
`trainer.test(model)`, `torch.save(model...)` and predictions use it. When nothing
after the fit reads the module, the fit's result is saved (post_training_save.py), on
`trainer.is_global_zero`.

Every approach keeps the module's own class, which the Trainer needs: dynamic
quantization and bf16 swap modules inside a copy, and the runtime quantizes a
LightningModule statically child by child inside a copy instead of tracing it whole
into an FX GraphModule. Static calibration reads the loader the Trainer validated (else
trained) with during the fit (`lightning_calib_dataloader(trainer)`): the script's
loaders, a datamodule's or the module's own alike. `benchmark` is not routed
through the Trainer. `LightningCLI` runs fit inside its constructor, with no
trained module in the script.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import final_model
from neural_coder.analysis.final_model import FinalModel
from neural_coder.analysis.lightning import LIGHTNING_PACKAGES, LightningFit, LightningUse
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import AddImport
from neural_coder.transforms.snippets import Code

from .base import Plan
from .post_training import PostTrainingPlanner

LIGHTNING_QUANTIZATION = "neural_coder.runtime.integrations.lightning_quantization"
EVALUATION_PARAMETERS = ("model", "dataloaders", "ckpt_path", "verbose", "datamodule")


class LightningPostTrainingPlanner(PostTrainingPlanner):
    def build(self) -> Plan:
        use = self.facts.lightning
        assert use is not None
        fit = self._only_fit(use)
        if self.approach == "benchmark":
            self._refuse(
                fit,
                "benchmark is not routed through the Lightning Trainer",
                "benchmark the trained checkpoint in a script of its own, or use "
                "--approach ptq-static, ptq-dynamic or bf16 here",
            )
        if self.quant_approach in ("static", "auto") and self.options.target == "inc":
            self._refuse(
                fit,
                "INC's static quantization traces the LightningModule into an FX GraphModule, "
                "which the Trainer cannot validate or test (it needs a LightningModule)",
                "use --target runtime (its static quantization swaps the modules inside the "
                "LightningModule), or --approach ptq-dynamic",
            )
        model = fit.model
        if not isinstance(model, cst.Name | cst.Attribute):
            self._refuse(
                fit,
                "the module given to fit is not a name the script goes on with",
                "assign the LightningModule to a name first: model = LitModel(...); "
                "trainer.fit(model, ...)",
            )
        name = self.src.code(model)
        self.refuse_peft_weights(name, fit.scope)
        place = FinalModel(name, fit.statement, "after", fit.scope)
        if "." not in name and not final_model.later_reads(self.index, place):
            # nothing tests, saves or returns the module after the fit: the fit saves it
            # (on the Trainer's global rank 0, as Lightning writes its checkpoints)
            self._plan_save(place, f"{fit.trainer}.is_global_zero")
        evaluation = self._evaluation(use, fit, name)
        self._refuse_checkpoint_loads(use, fit, name)
        eval_func = what = None
        if evaluation is not None:
            method, kwargs = evaluation
            eval_func = f"lightning_eval_func({fit.trainer}, {method!r}{kwargs})"
            what = f"{fit.trainer}.{method}() as the script calls it, its logged metric"
        loader = None
        if self.quant_approach in ("static", "auto") or self.approach == "bf16":
            self._refuse_without_forward(fit, model)
        if self.quant_approach in ("static", "auto"):
            loader = f"lightning_calib_dataloader({fit.trainer})"
            self.plan.edits.append(AddImport(LIGHTNING_QUANTIZATION, "lightning_calib_dataloader"))
        elif self.approach == "bf16":  # measured on a batch: its test_step may not call forward
            self.config_extra = {"example_inputs": Code(f"lightning_example_inputs({fit.trainer})")}
            self.plan.edits.append(AddImport(LIGHTNING_QUANTIZATION, "lightning_example_inputs"))
        self._emit(
            name,
            fit.statement,
            "after",
            loader,
            eval_func,
            what,
            higher_is_better=True,  # the eval_func turns it when its metric is a loss
            adopt=(LIGHTNING_QUANTIZATION, "quantized_lightning_module"),
        )
        if eval_func is not None:
            self.plan.edits.append(AddImport(LIGHTNING_QUANTIZATION, "lightning_eval_func"))
        return self.plan

    def _refuse_without_forward(self, fit: LightningFit, model: cst.BaseExpression) -> None:
        """Calibration (and bf16's measurement) call the module, `model(x)`: a LightningModule
        of this file whose class, bases included, defines no forward cannot run it."""
        cls = self.index.instance_class(model, fit.scope)
        if cls is None or self.index.method_of(cls, "forward") is not None:
            return
        if not self._bases_known(cls):
            return  # a base from elsewhere may define forward
        name = self.src.code(model)
        use = "calibration runs" if self.quant_approach else "bf16 measures its speed-up on"
        raise AnalysisError(
            f"{self.approach} after {fit.trainer}.fit at line {self.src.line(fit.call)}: {use} "
            f"{name}(x) on the Trainer's batches, but {cls.name.value} defines no forward "
            "(its steps call its network directly)",
            path=self.src.path,
            line=self.src.line(cls),
            hint=f"give {cls.name.value} a forward that runs its network "
            "(def forward(self, x): return self.<network>(x)), or use --approach ptq-dynamic",
        )

    def _bases_known(self, cls: cst.ClassDef) -> bool:
        """Every base of `cls` is a class of this file (its bases known too) or Lightning's."""
        for base in cls.bases:
            value = base.value
            if isinstance(value, cst.Name) and value.value in self.index.classes:
                if not self._bases_known(self.index.classes[value.value]):
                    return False
                continue
            if self.index.qualified(value).split(".")[0] not in LIGHTNING_PACKAGES:
                return False
        return True

    @property
    def _result(self) -> str:
        """What the fit makes of the module, as the messages name it."""
        return (
            "bf16"
            if self.approach == "bf16"
            else "quantized"
            if self.approach == "ptq-auto"
            else "int8"
        )

    def _only_fit(self, use: LightningUse) -> LightningFit:
        if use.cli_runs or len(use.fits) != 1 or use.fits[0].model is None:
            node = use.first_line_node
            line = self.src.line(node)
            why = (
                "LightningCLI builds the module and runs fit inside its constructor, so "
                "there is no trained module in the script to quantize"
                if use.cli_runs
                else f"{len(use.fits)} Lightning trainings"
                if len(use.fits) != 1
                else "the fit is given no module"
            )
            raise AnalysisError(
                f"post-training quantization under PyTorch Lightning (line {line}): {why}",
                path=self.src.path,
                line=line,
                hint="quantize the trained checkpoint in a script of its own "
                "(model = LitModel.load_from_checkpoint(path); trainer.test(model)), or "
                "use a training approach (qat, pruning, distillation) here",
            )
        return use.fits[0]

    def _refuse(self, fit: LightningFit, why: str, hint: str) -> None:
        line = self.src.line(fit.call)
        raise AnalysisError(
            f"{self.approach} after {fit.trainer}.fit at line {line}: {why}",
            path=self.src.path,
            line=line,
            hint=hint,
        )

    def _evaluation(
        self, use: LightningUse, fit: LightningFit, name: str
    ) -> tuple[str, str] | None:
        """The first `trainer.validate/test(name, ...)` after the fit in its scope: its
        method and its other arguments (as `, key=value` code), or None (a warning)."""
        fit_line = self.src.line(fit.call)
        for call in sorted(use.evaluations, key=self.src.line):
            func = call.func
            assert isinstance(func, cst.Attribute)
            method = func.attr.value
            if (
                method not in ("validate", "test")
                or self.src.line(call) <= fit_line
                or self.index.scope_of(call) is not fit.scope
                or self.src.code(func.value) != fit.trainer
            ):
                continue
            if not self._evaluates(call, name):
                self._refuse(
                    fit,
                    f"{fit.trainer}.{method} at line {self.src.line(call)} is not given "
                    f"{name}, so it evaluates a float checkpoint (the best or last one), not "
                    f"the {self._result} module",
                    f"pass the module and no ckpt_path=: {fit.trainer}.{method}({name}, ...)",
                )
            kwargs = ""
            for position, arg in enumerate(call.args):
                key = arg.keyword.value if arg.keyword else None
                if key is None:  # validate/test(model, dataloaders, ckpt_path, verbose, datamodule)
                    key = EVALUATION_PARAMETERS[min(position, len(EVALUATION_PARAMETERS) - 1)]
                if key in ("model", "verbose"):
                    continue
                if key == "ckpt_path":
                    self._refuse(
                        fit,
                        f"{fit.trainer}.{method} at line {self.src.line(call)} loads "
                        f"ckpt_path={self.src.code(arg.value)}: float weights into the "
                        f"{self._result} module",
                        f"drop ckpt_path= there (the module {name} holds the trained weights)",
                    )
                if self._assigned_after(arg.value, fit_line, fit):
                    return None
                kwargs += f", {key}={self.src.code(arg.value)}"
            return method, kwargs
        self.plan.warnings.append(
            f"no {fit.trainer}.validate/test of {name} follows the fit: it is converted once, "
            "without accuracy tuning"
        )
        return None

    def _refuse_checkpoint_loads(self, use: LightningUse, fit: LightningFit, name: str) -> None:
        """A `trainer.validate/test/predict(..., ckpt_path=...)` after one that is given the
        converted module loads the float checkpoint into it, the module the Trainer then
        holds (a state dict the int8 / bf16 module does not take)."""
        fit_line = self.src.line(fit.call)
        handed = False
        for call in sorted(use.evaluations, key=self.src.line):
            func = call.func
            assert isinstance(func, cst.Attribute)
            if (
                self.src.line(call) <= fit_line
                or self.index.scope_of(call) is not fit.scope
                or self.src.code(func.value) != fit.trainer
            ):
                continue
            if not handed:
                handed = self._evaluates(call, name)
                continue
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == "ckpt_path":
                    self._refuse(
                        fit,
                        f"{fit.trainer}.{func.attr.value} at line {self.src.line(call)} loads "
                        f"ckpt_path={self.src.code(arg.value)}: float weights into the "
                        f"{self._result} module the Trainer holds",
                        f"drop ckpt_path= there (the module {name} holds the trained weights)",
                    )

    def _evaluates(self, call: cst.Call, name: str) -> bool:
        for position, arg in enumerate(call.args):
            key = arg.keyword.value if arg.keyword else None
            if key == "model" or (key is None and position == 0):
                return self.src.code(arg.value) == name
        return False

    def _assigned_after(self, value: cst.BaseExpression, line: int, fit: LightningFit) -> bool:
        """A name the evaluation reads that is (re)assigned only after the fit: the eval_func
        could not be built there."""
        names = {n.value for n in m.findall(value, m.Name())}  # type: ignore[union-attr]
        for n in names:
            assigned = [a for a in self.index.assignments.get(n, []) if a.scope is fit.scope]
            if assigned and all(self.src.line(a.statement) > line for a in assigned):
                self.plan.warnings.append(
                    f"{n} is built after the fit: it is converted once, without accuracy tuning"
                )
                return True
        return False
