"""The fit call itself: `quantization.fit` / `mix_precision.fit` (or `benchmark.fit`)
on the model, its config, its imports, and the line that puts the result in the model's
place. A part of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import kinds, last_epoch
from neural_coder.analysis.wraps import parallel_wrap
from neural_coder.transforms import snippets
from neural_coder.transforms.edits import AddImport
from neural_coder.transforms.snippets import Code

from .base import BasePlanner, Where

QUANT_APPROACHES = {"ptq-static": "static", "ptq-dynamic": "dynamic", "ptq-auto": "auto"}


class FitCall(BasePlanner):
    """A part of `PostTrainingPlanner` (post_training.py): the fit call."""

    #: more arguments of the config the fit is given (a subclass's: example_inputs=)
    config_extra: dict[str, object] | None = None
    #: `epoch == num_epochs - 1`: the fit sits in the epoch loop, run in its last epoch
    guard: str | None = None
    #: the folder expression the fit's result is saved to (post_training_save.py), if any
    save_to: str | None = None
    #: the script's main-process test the save runs under (`master_process`)
    save_guard: str | None = None

    @property
    def approach(self) -> str:
        return self.options.approach[0]

    @property
    def quant_approach(self) -> str | None:
        return QUANT_APPROACHES.get(self.approach)

    @property
    def reads_batches(self) -> bool:
        """Static (or auto) quantization calibrates on batches; benchmarking times them."""
        return self.approach == "benchmark" or self.quant_approach in ("static", "auto")

    def insert(self, anchor: cst.CSTNode, where: Where, lines: list[str], what: str) -> None:
        if self.guard is not None:
            lines = last_epoch.guarded(lines, self.guard)
        super().insert(anchor, where, lines, what)

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
        prelude: list[str] | None = None,
        calibrate_by_evaluating: bool = False,
        calibration_reason: str | None = None,
    ) -> None:
        """Insert the fit (or benchmark) call on `model`; its result replaces `model`
        (in `trainer` when a Hugging Face Trainer holds it; through the runtime function
        `adopt`, (module, name), when the script needs the bare module back); `prelude`:
        statements before the fit (the function its `eval_func` names);
        `calibrate_by_evaluating`: no loader, the `eval_func` is also the `calib_func`
        (`calibration_reason`: why, where a loader is in reach but cannot feed the model)."""
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
        if trainer is None and adopt is None:
            model = self._inside_a_parallel_wrap(model, anchor)
        kwargs: dict[str, object] = {}
        if loader is not None:
            kwargs["calib_dataloader"] = Code(loader)
        if calibrate_by_evaluating and eval_func is not None:
            kwargs["calib_func"] = Code(eval_func)
            why = calibration_reason or "no DataLoader is in reach"
            self.plan.placed.append(
                f"calib_func: {eval_source} calibrates: {why}, so the "
                "evaluation runs the prepared model over its own data once"
            )
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
        if trainer is None:
            self.declare_global(model, self.index.scope_of(anchor))
        if adopt is not None:
            replace = f"{model} = {adopt[1]}({quantized}, {model})"
            self.plan.edits.append(AddImport(*adopt))
        elif trainer is None:
            # a pipeline reads its model's `config`, which INC's wrapper does not pass on
            kept = (
                f"{quantized}.model" if kinds.runs_in_a_pipeline(self.index, model) else quantized
            )
            replace = f"{model} = {kept} if {quantized} is not None else {model}"
        else:
            replace = f"use_quantized_model({trainer}, {quantized})"
            self.plan.edits.append(AddImport(self.modules["transformers"], "use_quantized_model"))
        lines = [*(prelude or []), f"{quantized} = {call}", replace]
        what = f"{module}.fit"
        if self.save_to is not None:
            written = " and ".join(
                [f"{quantized} is not None"] + ([self.save_guard] if self.save_guard else [])
            )
            lines += [f"if {written}:", f"    {quantized}.save({self.save_to})"]
            what += f" + {quantized}.save({self.save_to})"
        self.insert(anchor, where, lines, what)  # type: ignore[arg-type]
        self._imports(module, tuned=eval_func is not None)

    def _inside_a_parallel_wrap(self, model: str, anchor: cst.CSTNode) -> str:
        """`net.module` for `net = nn.DataParallel(...)` (DDP, FSDP): the fit converts the
        bare model and puts it back inside the wrap, which keeps calling it, so that the
        script's `net.module.state_dict()` is the converted model's, recipe included."""
        wrap = parallel_wrap(self.index, model, self.index.scope_of(anchor))
        if wrap is None:
            return model
        self.plan.placed.append(
            f"{model} is a {wrap} wrap: the fit converts {model}.module and puts it back inside"
        )
        return f"{model}.module"

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
