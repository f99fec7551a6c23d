"""What every planner shares: the plan, names that do not clash, placing snippets,
and the compression configs built from the options."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from neural_coder.analysis import Facts, repeated_runs
from neural_coder.analysis.frozen import linear_probe_freeze, whole_model_freeze
from neural_coder.analysis.index import Scope
from neural_coder.analysis.kinds import pointwise_loss
from neural_coder.analysis.low_bit import low_bit_load
from neural_coder.analysis.pretrained import weights_before_training
from neural_coder.analysis.trainer import TrainerUse
from neural_coder.analysis.wraps import peft_adapters
from neural_coder.errors import AnalysisError
from neural_coder.options import DistillationOptions, OptimizeOptions
from neural_coder.transforms import match as m
from neural_coder.transforms import snippets
from neural_coder.transforms.edits import AddImport, Edit, InsertStatements, Where
from neural_coder.transforms.snippets import Code

from .module_globals import first_statement, needs_global
from .prunable_layers import refuse_nothing_to_prune

DEFAULT_LOSS_TYPES = DistillationOptions().loss_types

CONFIG_CLASSES = {
    "pruning": "WeightPruningConfig",
    "qat": "QuantizationAwareTrainingConfig",
    "distillation": "DistillationConfig",
}
WEIGHT_TECHNIQUES = {
    "pruning": "pruning",
    "qat": "quantization-aware training",
    **{a: "post-training quantization" for a in ("ptq-static", "ptq-dynamic", "ptq-auto")},
}
PRUNING_END_FRACTION = 0.8  # prune during the first 80 % of the run, fine-tune the rest
RECIPES_MODULE = "neural_coder.runtime.recipes"


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)  # human lines: what went where
    warnings: list[str] = field(default_factory=list)


class BasePlanner:
    #: channel patterns remove the pruned channels unless --no-shrink (see `_pruning_config`)
    shrink_by_default = True

    def __init__(self, facts: Facts, options: OptimizeOptions, line_length: int = 88) -> None:
        self.facts = facts
        self.options = options
        self.src = facts.source
        self.index = facts.index
        self.line_length = line_length
        self.plan = Plan()
        self.taken = set(self.src.names)  # a project: the names of all its files
        self.cm_name = self.free_name("compression_manager")
        self.teacher_name = self.free_name("teacher_model")
        self.script_teacher = False  # the teacher is a model the script already has
        # --recipe: the script's optimizer and epoch count, where they are known before training
        self.recipe_optimizer: str | None = None
        self.recipe_epochs: str | None = None
        # why pruning is one-shot although the run length is known ({start}: its step)
        self.one_shot_reason: str | None = None
        # the epoch count of a run that keeps its best checkpoint at epoch ends: pruning
        # reaches the target by the end of the first epoch, so every such file has it
        self.prune_in_first_epoch_of: str | None = None

    def build(self) -> Plan:
        raise NotImplementedError

    def folder_of_each_pass(
        self, folder: str, chosen: str, anchor: cst.CSTNode, scope: Scope
    ) -> tuple[str, str]:
        """The folder a save after training at `anchor` writes, one per pass of a loop that
        repeats the training (`f"{folder}/fold{fold}"` in a k-fold loop), and how it was
        chosen; a loop that repeats it with no variable to name its passes is warned of."""
        loop = self.facts.loop
        if loop is not None and any(
            a is loop.entry_loop for a in (anchor, *self.src.ancestors(anchor))
        ):
            anchor = loop.entry_loop  # a save in the last epoch: the epochs are no passes
        names = repeated_runs.pass_names(self.index, anchor, scope)
        if names is None:
            self.plan.warnings.append(
                f"the training that ends at line {self.src.line(anchor)} runs in a loop with no "
                f"variable to tell its passes apart: each pass saves to {folder}, overwriting "
                "the one before; pass --save-dir per run, or loop over an index "
                "(for fold, (a, b) in enumerate(...))"
            )
            return folder, chosen
        if not names:
            return folder, chosen
        return (
            repeated_runs.folder_per_pass(folder, names),
            f"{chosen}, one folder per {', '.join(names)}: the training runs once per pass",
        )

    def free_name(self, name: str) -> str:
        """`name`, or `nc_name`, `nc_name_2`, ... when the script already uses it."""
        candidate, number = name, 1
        while candidate in self.taken:
            number += 1
            candidate = f"nc_{name}" if number == 2 else f"nc_{name}_{number - 1}"
        self.taken.add(candidate)
        return candidate

    def insert(self, anchor: cst.CSTNode, where: Where, lines: list[str], what: str) -> None:
        """Formatted statements next to `anchor`, or first/last in the loop `anchor`."""
        column = self.src.positions[anchor].start.column  # type: ignore[attr-defined]
        indent = column + (4 if where.startswith("body") else 0)
        code = snippets.format_code("\n".join(lines) + "\n", self.line_length - indent)
        # no blank lines (black's around a def): in a block they would be indented spaces
        code = "".join(line for line in code.splitlines(keepends=True) if line.strip())
        self.plan.edits.append(InsertStatements(anchor, where, code))
        position = {
            "before": "before",
            "after": "after",
            "body_start": "first in",
            "body_end": "last in",
        }[where]
        kind = "loop" if where.startswith("body") else "the statement"
        self.plan.placed.append(f"{what}: {position} {kind} at line {self.src.line(anchor)}")

    def declare_global(self, name: str, scope: Scope) -> None:
        """`global name` first in the function `scope` when a re-binding of `name` there
        is to reach the module-level model it reads (module_globals.py)."""
        if not needs_global(self.index, name, scope):
            return
        assert isinstance(scope, cst.FunctionDef)
        self.insert(first_statement(scope), "before", [f"global {name}"], f"global {name}")

    @property
    def modules(self) -> dict[str, str]:
        return snippets.RUNTIME_MODULES[self.options.target]

    # -- training-time configs ------------------------------------------------------------
    def configs(self, total_steps: str | None) -> str:
        """The configs for `prepare_compression`: one, or a list in the approach's order.
        `total_steps` is an expression for the run's optimizer steps ("" when the
        runtime fits the pruning schedule itself)."""
        if self.options.recipe is not None:
            return self._recipe_config()
        parts = []
        for technique in self.options.approach:
            if technique == "pruning":
                # a pipeline fits the pruning stage's schedule to the stage at run time
                steps = "" if self.options.staged else total_steps
                parts.append(self._pruning_config(steps))
            elif technique == "qat":
                backend = self.options.qat.backend
                kwargs = {} if backend == "default" else {"backend": backend}
                parts.append(snippets.call(CONFIG_CLASSES["qat"], kwargs))
            else:
                d = self.options.distillation
                criterion = snippets.call(
                    "KnowledgeDistillationLossConfig",
                    {
                        "temperature": d.temperature,
                        "loss_types": list(self._distillation_loss_types()),
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

    def _distillation_loss_types(self) -> tuple[str, str]:
        """The user's loss types; by default MSE for a model trained on a regression,
        binary or embedding criterion, whose outputs a softmax-based KL would compare as
        one-class distributions (a single output: always 0, so the teacher taught
        nothing) or as a distribution over the batch (a `(batch,)` logit)."""
        d = self.options.distillation
        loop = self.facts.loop
        if d.loss_types != DEFAULT_LOSS_TYPES or loop is None or loop.loss_statement is None:
            return d.loss_types
        found = pointwise_loss(self.index, loop.loss_statement, loop.backward_scope)
        if found is None:
            return d.loss_types
        criterion, kind = found
        article = "an" if kind[0] in "aeiou" else "a"
        note = (
            f"distillation loss_types ['MSE', 'MSE']: the loss is {article} {kind} criterion "
            f"({criterion}), on outputs a KL over softmax cannot compare; --loss-types sets others"
        )
        if note not in self.plan.placed:
            self.plan.placed.append(note)
        return ("MSE", "MSE")

    def pipeline_config(self, stages: str, epochs: str | None, steps_per_epoch: str | None) -> str:
        """`PipelineConfig(...)` around the stage configs `stages` (a multi-shot run):
        the script's epoch count split evenly, or the user's split."""
        kwargs: dict[str, object] = {}
        if self.options.stage_epochs is not None:
            kwargs["stage_epochs"] = list(self.options.stage_epochs)
        elif epochs is not None:  # else given later, by fit_pipeline
            kwargs["epochs"] = Code(epochs)
        if steps_per_epoch:
            kwargs["steps_per_epoch"] = Code(steps_per_epoch)
        if "pruning" in self.options.approach and self.options.pruning.end_step is not None:
            kwargs["fit_pruning_schedule"] = False
        self.plan.edits.append(AddImport(self.modules["training"], "PipelineConfig"))
        return snippets.call("PipelineConfig", kwargs, args=[Code(stages)])

    def _recipe_config(self) -> str:
        """`RecipeConfig(path, ...)`: the schedule is the recipe's; the script gives the
        teacher, the optimizer its LR schedulers drive and the epoch count."""
        kwargs: dict[str, object] = {}
        if "distillation" in self.options.approach:
            kwargs["teacher_model"] = Code(self.teacher_name)
        if self.recipe_optimizer is not None:
            kwargs["optimizer"] = Code(self.recipe_optimizer)
        if self.recipe_epochs is not None:
            kwargs["epochs"] = Code(self.recipe_epochs)
        return snippets.call("RecipeConfig", kwargs, [self.options.recipe])

    def fitted_end_step(self, start: int, total_steps: str) -> str:
        """The expression of the last pruning step fitted to the run: 80% of it, or the
        end of the first epoch when that is sooner and the best checkpoint is kept."""
        end = f"int({PRUNING_END_FRACTION} * ({total_steps}))"
        if self.prune_in_first_epoch_of is not None:
            end = f"min({end}, ({total_steps}) // max(1, {self.prune_in_first_epoch_of}) - 1)"
        return f"max({start}, {end})"

    def _pruning_config(self, total_steps: str | None) -> str:
        p = self.options.pruning
        start = p.first_step
        shrink = p.shrinks(self.options.target, self.shrink_by_default)
        if shrink and not self.shrink_by_default:
            self.plan.warnings.append(
                "--shrink: the Trainer saves with save_pretrained, whose config keeps the "
                "original sizes, so from_pretrained cannot load the shrunk model: save it "
                "whole (torch.save(model, path))"
            )
        if shrink and p.start_step is None:
            start = max(start, 1)  # after one forward: the runtime traces the model there
        kwargs: dict[str, object] = {
            "target_sparsity": p.target_sparsity,
            "pattern": p.pattern,
            "pruning_type": p.pruning_type,
            "pruning_scope": p.pruning_scope,
            "start_step": start,
        }
        if shrink:
            kwargs["shrink"] = True  # the channels leave at on_train_end (pruning/shrink.py)
        if p.end_step is not None:
            kwargs["end_step"] = p.end_step
        elif total_steps:
            kwargs["end_step"] = Code(self.fitted_end_step(start, total_steps))
        elif total_steps == "":
            kwargs["end_step"] = start  # replaced when training starts, see CompressionCallback
        else:
            kwargs["end_step"] = start
            self.plan.warnings.append(
                self.one_shot_reason.format(start=start)
                if self.one_shot_reason is not None
                else f"the run length could not be read from the script: pruning is one-shot "
                f"at step {start}; pass --end-step to prune gradually"
            )
        return snippets.call(CONFIG_CLASSES["pruning"], kwargs)

    def teacher(
        self, model: str, scope: Scope, training: cst.CSTNode, unpaired: str | None = None
    ) -> str:
        """The statement that builds the teacher. The default, a frozen copy of the
        model, only when the model holds trained weights before `training` starts.
        `unpaired`: why the script's own frozen model cannot teach (said in a refusal)."""
        teacher = self.options.distillation.teacher
        if self.options.distillation.teacher_is_copy:
            self.plan.placed.append(f"teacher: a frozen copy of {model} (--teacher copy)")
            return f"{self.teacher_name} = copy.deepcopy({model})"
        if teacher is None:
            weights = weights_before_training(self.index, model, scope, training)
            if not weights.trained:
                own = f" ({unpaired}, so it cannot be the teacher)" if unpaired else ""
                raise AnalysisError(
                    f"distillation needs a teacher{own}: the default, a frozen copy of "
                    f"{model}, would teach nothing because {weights.why}",
                    path=self.src.path,
                    line=self.src.line(training),
                    hint="pass a trained teacher: --teacher path/to/trained_weights.pt (loaded into "
                    "a copy of the model) or --teacher 'Expression()' that builds one; "
                    f"--teacher copy when {model} does hold trained weights there",
                )
            self.plan.placed.append(f"teacher: a frozen copy of {model} ({weights.why})")
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

    def refuse_peft_weights(self, model: str, scope: Scope) -> None:
        """Pruning and quantization change the model's weights; a PEFT model trains only
        its adapters, and merging them afterwards would undo the compression of the
        frozen base weights. Distillation only changes the loss, bf16 only the dtype.
        Weights loaded in 4 or 8 bits are refused first (see refuse_low_bit_weights)."""
        self.refuse_low_bit_weights(model, scope)
        parts = {WEIGHT_TECHNIQUES[t] for t in self.options.approach if t in WEIGHT_TECHNIQUES}
        if not parts:
            return
        call = peft_adapters(self.index, model, scope)
        if call is None:
            self._refuse_training_frozen_weights(model, scope)
            self._refuse_pruning_only_the_head(model, scope)
            if "pruning" in self.options.approach:
                refuse_nothing_to_prune(self.index, model, scope)
            return
        what = " and ".join(sorted(parts))
        raise AnalysisError(
            f"{model} has PEFT adapters ({self.src.code(call.func)} at line {self.src.line(call)}): "
            f"{what} would act on the frozen base weights, which only the adapters are trained "
            "around, and merging the adapters afterwards would undo it",
            path=self.src.path,
            line=self.src.line(call),
            hint="merge the adapters first (model = model.merge_and_unload()) and compress the "
            "merged model in a script of its own; distillation works on a PEFT model as it is",
        )

    def _refuse_training_frozen_weights(self, model: str, scope: Scope) -> None:
        """Every base weight frozen before training (LoRA fine-tuning with
        `mark_only_lora_as_trainable(model)`, `model.requires_grad_(False)`, a freezing
        loop) and nothing of the model's own layers trained again after it: gradient-scored
        pruning would prune nothing, and QAT would learn no weight for its fake quantization,
        so it would only quantize the frozen base after training, under fp32 adapters that
        could no longer be merged into it. A new head or an unfreeze after the freeze trains
        and is compressed (see whole_model_freeze)."""
        techniques = [t for t in ("pruning", "qat") if t in self.options.approach]
        if not techniques:
            return
        freeze = whole_model_freeze(self.index, model, scope)
        if freeze is None:
            return
        line = self.src.line(freeze)
        code = self.src.code(freeze).strip().splitlines()[0]
        why = []
        if "pruning" in techniques:
            why.append(
                "pruning scores and masks the trained weights, so the frozen ones would get "
                "no gradient and nothing would be pruned"
            )
        if "qat" in techniques:
            why.append(
                "quantization-aware training would quantize the frozen weights without "
                "training them, under adapters left in fp32 that could no longer be merged "
                "into them"
            )
        verb = " and ".join("prune" if t == "pruning" else "quantize" for t in techniques)
        post_training = (
            " (quantized post-training: --approach ptq-dynamic)" if "qat" in techniques else ""
        )
        raise AnalysisError(
            f"the weights of {model} are frozen at line {line} ({code}): only adapters train, "
            f"and {'; '.join(why)}",
            path=self.src.path,
            line=line,
            hint=f"{verb} the fine-tuned model after merging its adapters, in a script of its "
            f"own{post_training}, or unfreeze the weights to {verb} (drop the freeze); "
            "distillation works on the adapters as they are",
        )

    def _refuse_pruning_only_the_head(self, model: str, scope: Scope) -> None:
        """A backbone frozen whole, only its classifier head trained (a linear probe):
        pruning leaves the head out and gets no gradient for the rest, so it would prune
        nothing; quantization and distillation work."""
        if "pruning" not in self.options.approach:
            return
        freeze = linear_probe_freeze(self.index, model, scope)
        if freeze is None:
            return
        line = self.src.line(freeze)
        code = self.src.code(freeze).strip().splitlines()[0]
        raise AnalysisError(
            f"the weights of {model} are frozen at line {line} ({code}) and only its "
            "classifier head trains again: pruning leaves the head out and the frozen "
            "weights get no gradient to score, so nothing would be pruned",
            path=self.src.path,
            line=line,
            hint="train the backbone too (drop the freeze) to prune it; qat, distillation "
            "and the post-training approaches work as the script is",
        )

    def refuse_low_bit_weights(self, model: str, scope: Scope) -> None:
        """A model loaded with bitsandbytes 4-bit / 8-bit weights has packed integer
        weights that pruning, quantization and bf16 cannot convert; distillation (a loss)
        works on it."""
        parts = [
            "bf16" if t == "bf16" else WEIGHT_TECHNIQUES[t]
            for t in self.options.approach
            if t in WEIGHT_TECHNIQUES or t == "bf16"
        ]
        if not parts:
            return
        call = low_bit_load(self.index, model, scope)
        if call is None:
            return
        raise AnalysisError(
            f"{model} is loaded with 4-bit or 8-bit weights ({self.src.code(call.func)} at line "
            f"{self.src.line(call)}): its linear layers are bitsandbytes modules whose weights are "
            f"already packed integers, which {' and '.join(dict.fromkeys(parts))} cannot convert",
            path=self.src.path,
            line=self.src.line(call),
            hint="load the model in full precision (drop load_in_4bit / load_in_8bit / "
            "quantization_config) to compress it, or keep the bitsandbytes model as it is",
        )

    def qat_needs_fp32(
        self,
        what: str,
        line: int,
        switch: cst.BaseExpression | None,
        fix: str,
        half_weights: bool = False,
    ) -> None:
        """Mixed precision (autocast) with QAT: the bundled runtime's fake-quant modules
        compute in fp32 under autocast and hand back the autocast dtype, so it trains and
        converts; INC's fake-quant observers take fp32 activations only. Weights kept
        in half precision (`half_weights`: Lightning's "bf16-true") cannot be converted
        to int8 by either. Refused when on (`switch` absent or `True`), a warning when
        a run-time value switches it."""
        if m.matches(switch, m.Name("False")):
            return
        if self.options.target != "inc" and not half_weights:
            self.plan.placed.append(
                f"line {line}: QAT under mixed precision: the runtime's fake-quant modules "
                "compute in fp32 and hand back the autocast dtype"
            )
            return
        why = (
            "QAT converts fp32 weights to int8, and these are kept in half precision"
            if half_weights
            else "INC's QAT fake-quant observers take fp32 activations only"
        )
        way_out = (
            fix if half_weights else f"{fix}, or --target runtime (it trains QAT under autocast)"
        )
        if switch is not None and not m.matches(switch, m.Name("True")):
            self.plan.warnings.append(f"line {line}: {what}: {why}: {way_out}")
            return
        raise AnalysisError(
            f"{what}: {why}",
            path=self.src.path,
            line=line,
            hint=f"{way_out}; pruning and distillation work in mixed precision",
        )

    def warn_guessed_trainer(self, use: TrainerUse) -> None:
        if use.guessed is not None:
            self.plan.warnings.append(
                f"line {self.src.line(use.call)}: {use.guessed}; a guess: check that the class "
                "takes callbacks and runs Trainer.train()/evaluate() as transformers' Trainer does"
            )

    def training_imports(self) -> None:
        edits = self.plan.edits
        edits.append(AddImport(self.modules["training"], "prepare_compression"))
        if self.options.recipe is not None:
            edits.append(AddImport(RECIPES_MODULE, "RecipeConfig"))
        else:
            for technique in self.options.approach:
                edits.append(AddImport(self.modules["config"], CONFIG_CLASSES[technique]))
        if "distillation" in self.options.approach:
            if self.options.recipe is None:
                edits.append(AddImport(self.modules["config"], "KnowledgeDistillationLossConfig"))
            d = self.options.distillation
            if (
                (d.teacher is None and not self.script_teacher)
                or d.teacher_is_copy
                or d.teacher_is_checkpoint
            ):
                edits.append(AddImport("copy"))
            if d.teacher_is_checkpoint:
                edits.append(AddImport("torch"))
