"""Hooks for a hand-written training loop, where DESIGN.md shows them.

The compression manager is prepared right before training starts (the model, the
loader and the epoch count all exist there, so the pruning schedule can be fitted
to the run), or before the statement that wraps the model (`DDP(model)`,
`torch.compile(model)`, `accelerator.prepare(model, ...)`), because the runtime
compresses the bare module. It reaches the functions that hold the loop through a
`compression_manager` parameter (or `self.compression_manager` inside the class).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.expressions import free_names, passes_function
from neural_coder.analysis.final_model import weights_reloaded_after
from neural_coder.analysis.index import Function, Scope, is_partial
from neural_coder.analysis.precision import autocast_of
from neural_coder.analysis.wraps import (
    find_wrap,
    find_wrap_in_class,
    unprepared_wrap,
    wrap_anchor,
)
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    AddParameter,
    ReplaceExpression,
)

from .base import PRUNING_END_FRACTION, WEIGHT_TECHNIQUES, Plan
from .caller import (
    CallerSite,
    attribute_alias,
    caller_of_parameter,
    refuse_an_averaged_copy,
    refuse_qat_before_a_weight_copy,
    refuse_qat_on_a_constructor_parameter,
    refuse_qat_on_a_container_item,
)
from .closure_steps import ClosureSteps
from .stages import StagedPlanner
from .student_output import accessed_call, changes_of, check_followed, refuse_changed

HOOKS_INTEGRATION = "neural_coder.runtime.integrations.hooks"
# an expression evaluated only on some paths, or later, or many times
CONDITIONAL_EXPRESSIONS = (
    cst.IfExp,
    cst.BooleanOperation,
    cst.Lambda,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)


class LoopPlanner(ClosureSteps, StagedPlanner):
    def build(self) -> Plan:
        loop = self.facts.loop
        if loop is None:
            assert self.facts.loop_error is not None
            raise self.facts.loop_error
        techniques = self.options.approach
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
        weights = [WEIGHT_TECHNIQUES[t] for t in techniques if t in WEIGHT_TECHNIQUES]
        if weights and (
            warning := refuse_an_averaged_copy(
                self.index,
                bare,
                wrap_scope,
                self.src.line(loop.entry_loop) if wrap_scope is loop.entry_scope else 1 << 30,
                " and ".join(weights),
            )
        ):
            self.plan.warnings.append(warning)
        caller = None
        if "qat" in techniques:
            caller = caller_of_parameter(
                self.index,
                loop,
                bare,
                "distillation" in techniques,
                None if wrap is None else self.src.line(wrap.statement),
            )
        if "qat" in techniques and caller is None:
            held = attribute_alias(self.index, bare, loop.entry_scope, self.src.line(anchor))
            refuse_qat_on_a_constructor_parameter(self.index, loop, held or bare)
        if loop.model_method is not None:
            self._refuse_model_method(loop)
        if "qat" in techniques and loop.model_call is not None:
            self._check_autocast(loop.model_call)
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
        confs = self.configs(total_steps)
        if self.options.staged:
            confs = self._pipeline(loop, cm, anchor, confs, total_steps, fit_later)
        before.append(f"{cm} = prepare_compression({bare}, {confs})")
        before.append(f"{cm}.callbacks.on_train_begin()")
        if "qat" in techniques:
            before.append(f"{bare} = {cm}.model")
            if caller is None and (
                alias := attribute_alias(self.index, bare, prepare_scope, self.src.line(anchor))
            ):
                before.append(f"{alias} = {bare}")  # the class's other methods see it too
        self.insert(anchor, "before", before, "prepare_compression and on_train_begin")
        if (
            fit_later is not None
            and not self.options.staged
            and "pruning" in techniques
            and self.options.pruning.end_step is None
            and self.options.recipe is None
        ):
            self._fit_schedule(loop, cm, fit_later)
        end = weights_reloaded_after(self.index, bare, training, prepare_scope)
        if end is not None:
            # the best weights saved during training are loaded back: QAT converts (and
            # pruning finishes) on them, and the fake-quant checkpoint still fits the model
            self.plan.placed.append(
                f"the model's weights are loaded again at line {self.src.line(end)}: "
                "training ends after that"
            )
        self.insert(end or training, "after", [f"{cm}.callbacks.on_train_end()"], "on_train_end")
        if "qat" in techniques:
            self._warn_reload_after_training(bare, prepare_scope, training)

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
        step_cm = cm_of[id(loop.step_scope)]
        self.insert(
            loop.step_loop,
            "body_start",
            [f"{step_cm}.callbacks.on_step_begin({loop.step_index or '0'})"],
            "on_step_begin",
        )
        self.insert(
            loop.step_loop, "body_end", [f"{step_cm}.callbacks.on_step_end()"], "on_step_end"
        )

        inner_cm = cm_of[id(loop.backward_scope)]
        if "distillation" in techniques:
            self._distillation_loss(loop, inner_cm)
            for other in loop.alternatives:
                self._distillation_loss(other, inner_cm)
        if loop.step_in_scaler:
            self._hooks_inside_the_scaler(loop, inner_cm)
        if loop.step_runs_closure:
            self._hooks_around_a_closure_step(loop, inner_cm, cm_of)
        skipped = loop.step_in_scaler or loop.step_runs_closure
        for step in [] if skipped else [loop.optimizer_step, *loop.other_steps]:
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

    def _hooks_inside_the_scaler(self, loop: TrainingLoop, cm: str) -> None:
        """`loss_scaler(loss, optimizer, ...)` backs up and steps in one call: the optimizer
        hooks go onto the optimizer for that call, and come off after it."""
        handles = self.free_name("step_hooks")
        self.insert(
            loop.optimizer_step,
            "before",
            [f"{handles} = optimizer_step_hooks({loop.optimizer}, {cm})"],
            "on_before/after_optimizer_step inside the scaler's optimizer.step()",
        )
        self.insert(loop.optimizer_step, "after", [f"{handles}.remove()"], "the step hooks removed")
        self.plan.edits.append(AddImport(HOOKS_INTEGRATION, "optimizer_step_hooks"))

    def _recipe_facts(self, loop: TrainingLoop, anchor: cst.CSTNode, in_entry: bool) -> None:
        """The optimizer (when it is a name known where the manager is prepared) and the
        epoch count (`range(N)` / `range(a, b)` of the epoch loop) for `RecipeConfig`;
        neither when the manager is prepared in the caller (`in_entry` false)."""
        from neural_coder.recipe_options import lr_schedule_clash

        assert self.options.recipe is not None
        clash = lr_schedule_clash(self.options.recipe, self.src.text)
        if clash:
            self.plan.warnings.append(clash)
        if in_entry and not loop.hops and self._defined_before(loop.optimizer, anchor, loop):
            self.recipe_optimizer = loop.optimizer
        else:
            self.plan.placed.append(
                "recipe: the optimizer is found at its first step (it is not in scope where "
                "the compression manager is prepared)"
            )
        epoch_loop = loop.epoch_loop
        if epoch_loop is None:
            self.plan.warnings.append(
                "the training loop has no epoch loop: the recipe's policies see one epoch, epoch 0"
            )
            return
        if not isinstance(epoch_loop, cst.For) or not m.matches(
            epoch_loop.iter, m.Call(func=m.Name("range"))
        ):
            return
        args = epoch_loop.iter.args  # type: ignore[attr-defined]
        if any(a.keyword or a.star for a in args) or len(args) not in (1, 2):
            return
        codes = [self.src.code(a.value) for a in args]
        epochs = codes[0] if len(codes) == 1 else f"({codes[1]}) - ({codes[0]})"
        if in_entry and self._defined_before(epochs, anchor, loop):
            self.recipe_epochs = epochs

    def _refuse_qat_behind_a_wrap(
        self, loop: TrainingLoop, model: str, entry_cls: cst.ClassDef | None
    ) -> None:
        call = unprepared_wrap(self.index, model, loop.entry_scope, entry_cls)
        if call is None:
            return
        raise AnalysisError(
            f"{model} is wrapped by {self.src.code(call.func)} at line {self.src.line(call)} "
            "around a model with no name of its own: QAT must prepare the bare module before "
            "the wrap, and there is no name to prepare",
            path=self.src.path,
            line=self.src.line(call),
            hint="build the model into a name first (model = Net(); wrapped = DDP(model))",
        )

    def _fit_schedule(self, loop: TrainingLoop, cm: str, total_steps: str) -> None:
        start = self.options.pruning.first_step
        self.insert(
            loop.entry_loop,
            "before",
            [
                f"fit_pruning_schedules({cm}.callbacks, "
                f"max({start}, int({PRUNING_END_FRACTION} * ({total_steps}))))"
            ],
            "the pruning schedule fitted to the run",
        )
        self.plan.edits.append(AddImport(HOOKS_INTEGRATION, "fit_pruning_schedules"))

    def _prepare_in_caller(
        self, loop: TrainingLoop, caller: CallerSite, cm: str
    ) -> tuple[cst.BaseStatement, str]:
        """The manager prepared where the caller hands the model over (before the caller's
        own wrap, `if distributed: model = DDP(model)`), and passed down; the anchor and
        the bare model's name there."""
        fn = caller.function
        self.plan.edits.append(AddParameter(fn.node, cm))
        self.plan.edits.append(AddKeywordArgument(caller.call, cm, cm))
        self.plan.placed.append(
            f"{fn.key}() receives the model as a parameter: {caller.model} is prepared where "
            f"line {self.src.line(caller.call)} passes it, so the caller goes on with the "
            f"quantized model; line {self.src.line(fn.node)}: {fn.key}() takes {cm}"
        )
        wrap = caller.wrap
        if wrap is None:
            return caller.statement, caller.model
        anchor = wrap_anchor(self.src, wrap, caller.statement)
        line = self.src.line(wrap.statement)
        if not self._defined_before(wrap.inner, anchor, loop, caller.scope):
            raise AnalysisError(
                f"{wrap.inner} is wrapped by {wrap.what} at line {line} before it is handed to "
                f"{fn.key}(), and no single place before that prepares it for every path",
                path=self.src.path,
                line=line,
                hint="build the model before the branches that wrap it",
            )
        self.plan.placed.append(
            f"the model is wrapped by {wrap.what} at line {line}: {wrap.inner} is compressed "
            f"before line {self.src.line(anchor)}"
        )
        return anchor, wrap.inner

    def _warn_reload_after_training(self, model: str, scope: Scope, training: cst.CSTNode) -> None:
        """`model = torch.load(best)` after training brings back what was saved during
        training: the fake-quant QAT model, not the int8 model `on_train_end` made."""
        end = self.src.line(training)
        for a in self.index.assignments_in(model, scope):
            line = self.src.line(a.statement)
            loads = [
                c
                for c in m.findall(a.value, m.Call())
                if self.index.qualified(c.func) == "torch.load"  # type: ignore[union-attr]
            ]
            if line > end and loads:
                self.plan.warnings.append(
                    f"line {line}: {model} is loaded back from a checkpoint saved during training: "
                    "that is the fake-quant QAT model, not the int8 model training ends with; "
                    f"save {model} after training to keep the int8 model"
                )
                return

    def _check_autocast(self, model_call: cst.Call) -> None:
        """A model run under autocast (bf16 or fp16) fails QAT in the first step."""
        scope = self.index.scope_of(model_call)
        for node in self.src.ancestors(model_call):
            if not isinstance(node, cst.With):
                continue
            for item in node.items:
                found = autocast_of(self.index, item.item, scope)
                if found is None:
                    continue
                line = self.src.line(node)
                entered = self.src.code(item.item)
                through = (
                    "" if entered.startswith(self.src.code(found.call.func)) else f"{entered} = "
                )
                self.qat_needs_fp32(
                    f"the model runs under {through}{self.src.code(found.call.func)} (line {line})",
                    line,
                    found.switch,
                    "train with QAT in fp32 (autocast(..., enabled=False))",
                )

    def _refuse_model_method(self, loop: TrainingLoop) -> None:
        """The loss comes from a method of the model (`model.training_step(batch, i)`).
        Pruning keeps the model; the runtime's QAT keeps its methods, INC's does not."""
        techniques = self.options.approach
        call = f"{loop.model_in_entry}.{loop.model_method}()"
        if "distillation" in techniques:
            why = "distillation needs the outputs of the model's forward next to the loss"
        elif "qat" in techniques and self.options.target == "inc":
            why = (
                "INC's QAT replaces the model with a traced copy that keeps its forward but "
                f"not its other methods, so {call} would be gone (the bundled runtime keeps it)"
            )
        else:
            return
        raise AnalysisError(
            f"the loss comes from {call}, not from a call of the model: {why}",
            path=self.src.path,
            line=self.src.line(loop.model_call or loop.backward),
            hint="compute the loss in the loop from the model's output (out = model(x); loss = criterion(out, y))",
        )

    def _thread_manager(self, loop: TrainingLoop) -> dict[int, str]:
        """The expression naming the manager in every scope on the training path."""
        entry_cls = self.index.class_of(loop.entry_scope)
        cm_of = {
            id(loop.entry_scope): f"self.{self.cm_name}" if entry_cls is not None else self.cm_name
        }
        for hop in reversed(loop.hops):  # outermost first
            caller_cm = cm_of[id(self.index.scope_of(hop.call))]
            # a step function the loop also calls directly (`optimizer.step(partial(
            # self.training_step, ...))`, or `self.training_step(...)` on the steps that
            # only accumulate gradients): the same training path
            same_loop = [
                c
                for c in self.index.call_sites(hop.function)
                if hop.closure_of is not None and self._in_step_loop(c, loop)
            ]
            if entry_cls is not None and hop.function.cls is entry_cls:
                self._refuse_other_paths(hop.function, hop.call, same_loop)
                cm_of[id(hop.function.node)] = f"self.{self.cm_name}"
                continue
            if hop.closure_of is not None and not is_partial(hop.call):
                self._closure_sees_the_manager(hop)
                cm_of[id(hop.function.node)] = caller_cm
                continue
            for call in self.index.call_sites(hop.function):
                if call is not hop.call and call not in same_loop:
                    raise AnalysisError(
                        f"{hop.function.key}() is also called at line {self.src.line(call)}, where no compression manager exists",
                        path=self.src.path,
                        line=self.src.line(call),
                    )
            self._refuse_handed_over(hop.function)
            self.plan.edits.append(AddParameter(hop.function.node, self.cm_name))
            for call in [hop.call, *same_loop]:
                self.plan.edits.append(AddKeywordArgument(call, self.cm_name, caller_cm))
            self.plan.placed.append(
                f"line {self.src.line(hop.function.node)}: {hop.function.key}() takes {self.cm_name} (passed at line {self.src.line(hop.call)})"
            )
            cm_of[id(hop.function.node)] = self.cm_name
        return cm_of

    def _refuse_handed_over(self, fn: Function) -> None:
        """`train_opt = torch.compile(train)` or `partial(train, ...)`: a library wraps the
        function and its callers call it without the manager the hooks inside read."""
        for call in self.index.calls:
            if self.index.resolve_call(call) is not None or is_partial(call):
                # a function of the file: its calls of the parameter are followed; a
                # partial is judged where it is handed on
                continue
            for arg in call.args:
                if passes_function(arg.value, fn.name) and (
                    fn.cls is None or isinstance(arg.value, cst.Attribute | cst.Call)
                ):
                    raise AnalysisError(
                        f"{fn.key}() runs the training step and is also handed to "
                        f"{self.src.code(call.func)}() at line {self.src.line(call)}: what that "
                        f"returns calls {fn.key}() without the compression manager its hooks need",
                        path=self.src.path,
                        line=self.src.line(call),
                        hint=f"give the other run a step function of its own, or pass "
                        f"{self.cm_name}= where it is called",
                    )

    def _refuse_other_paths(
        self, fn: Function, taken: cst.Call, same_loop: list[cst.Call]
    ) -> None:
        """A method on the training path that other code also calls (`self._backward(loss)`
        from warm-up and fine-tune loops): its hooks would read `self.compression_manager`
        on paths that may run before training prepares it."""
        others = [c for c in self.index.call_sites(fn) if c is not taken and c not in same_loop]
        if not others:
            return
        lines = ", ".join(str(self.src.line(c)) for c in others)
        raise AnalysisError(
            f"{fn.key}() is on the training path (called at line {self.src.line(taken)}) and "
            f"also called at line {lines}: the hooks inside it would run there too, where the "
            "compression manager may not exist yet (a warm-up before training)",
            path=self.src.path,
            line=self.src.line(others[0]),
            hint="give the other paths a step method of their own, or compress in a script "
            "with one training path",
        )

    def _distillation_loss(self, loop: TrainingLoop, cm: str) -> None:
        output = loop.model_output
        if loop.loss_statement is not None and output is None and loop.model_call is not None:
            output = self._hoist_model_call(loop.loss_statement, loop.model_call)
        if loop.loss_statement is None or output is None or loop.model_inputs is None:
            where = (
                f"the model is called inside {loop.model_called_in}, which returns the loss"
                if loop.model_called_in
                else "the model call is not assigned to a name before the loss"
            )
            raise AnalysisError(
                f"distillation needs the model's inputs and outputs next to the loss, but {where}",
                path=self.src.path,
                line=self.src.line(loop.loss_statement or loop.backward),
                hint="assign the model's output first (output = model(x); loss = criterion(output, y))",
            )
        if output == loop.loss_name:
            raise AnalysisError(
                f"the model call returns the loss itself ({self.src.code(loop.loss_statement)}): "
                "distillation needs the model's outputs to compare with the teacher's",
                path=self.src.path,
                line=self.src.line(loop.loss_statement),
                hint="have the model return its logits and compute the loss from them",
            )
        if loop.model_output is not None and loop.model_call is not None:
            output = self._unchanged_output(loop.model_output, loop.model_call, loop.loss_statement)
        loss = loop.loss_name
        inputs = self._inputs(loop)
        hook = f"{cm}.callbacks.on_after_compute_loss({inputs}, {output}, "
        # the script's own teacher output, so the teacher does not run twice
        given = (
            f", teacher_output={loop.teacher_output}"
            if self.script_teacher and loop.teacher_output is not None
            else ""
        )
        scale = self._accumulation_scale(loop.loss_statement, loop.accumulation)
        if scale is None:
            code = f"{loss} = {hook}{loss}{given})"
        else:  # the teacher's term is scaled down for accumulation like the student's
            code = f"{loss} = {hook}{loss} * {scale}{given}) / {scale}"
        self.insert(loop.loss_statement, "after", [code], "on_after_compute_loss")

    def _inputs(self, loop: TrainingLoop) -> str:
        """The model's inputs as the hook reads them. Inputs the model call re-binds
        (`output, hidden = model(data, hidden)`) are kept in a name before the call, so
        the teacher gets what the student got."""
        inputs = loop.model_inputs or ""
        if inputs.startswith("ModelInputs("):
            if self.options.target == "inc":
                raise AnalysisError(
                    f"the model takes positional and keyword arguments together "
                    f"({self.src.code(loop.model_call)}): INC's teacher call takes a tuple or a "  # type: ignore[arg-type]
                    "dict, not both",
                    path=self.src.path,
                    line=self.src.line(loop.model_call),  # type: ignore[arg-type]
                    hint="pass the model's inputs all by keyword, or use --target runtime",
                )
            self.plan.edits.append(AddImport(self.modules["training"], "ModelInputs"))
        call = loop.model_call
        statement = self.src.statement_of(call) if call is not None else None
        rebound = {
            t.value
            for small in getattr(statement, "body", ())
            if isinstance(small, cst.Assign)
            for target in small.targets
            for t in m.findall(target.target, m.Name())  # type: ignore[union-attr]
        }
        if statement is None or not rebound & free_names(cst.parse_expression(inputs)):
            return inputs
        name = self.free_name("model_inputs")
        self.insert(
            statement, "before", [f"{name} = {inputs}"], "the model's inputs, kept for the teacher"
        )
        return name

    def _accumulation_scale(
        self, loss_statement: cst.BaseStatement, accumulation: str | None
    ) -> str | None:
        """`N` when the loss statement divides by the accumulation factor N
        (`loss = criterion(out, y) / N`). A later `loss /= N` needs nothing: the hook
        goes before it."""
        if accumulation is None or not isinstance(loss_statement, cst.SimpleStatementLine):
            return None
        small = loss_statement.body[0]
        if not (
            isinstance(small, cst.Assign)
            and isinstance(small.value, cst.BinaryOperation)
            and isinstance(small.value.operator, cst.Divide)
        ):
            return None
        divisor = small.value.right
        text = self.src.code(divisor)
        if text != accumulation:
            return None
        return text if isinstance(divisor, cst.Name | cst.Attribute | cst.Integer) else f"({text})"

    def _hoist_model_call(self, loss_statement: cst.BaseStatement, call: cst.Call) -> str | None:
        """`loss = model(**batch).loss` or `loss = criterion(model(x), y)`: the model call
        moves into a statement of its own before the loss (`outputs = model(**batch)`),
        so the distillation hook can read the outputs. None where moving it could change
        what runs: the call is not in the loss statement itself, or runs conditionally,
        or more than once."""
        statement = self.src.statement_of(call)
        if statement is not loss_statement:
            # `model_pred = unet(x, t, return_dict=False)[0]` or `logits = model(**b).logits`
            # before the loss: the whole output is named, the prediction read from it
            if not self._reads_model_call(statement, call, loss_statement):
                return None
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        callee = self.src.code(call.func)
        calls = [c for c in m.findall(statement, m.Call()) if self.src.code(c.func) == callee]
        if len(calls) != 1:
            return None
        for node in self.src.ancestors(call):
            if node is statement:
                break
            if isinstance(node, CONDITIONAL_EXPRESSIONS):
                return None
        read = self.src.parent(call)
        method = isinstance(read, cst.Attribute) and isinstance(self.src.parent(read), cst.Call)
        if isinstance(read, cst.Subscript | cst.Attribute) and read.value is call and not method:
            check_followed(self.src, call, read)  # `.sum()` is the output's method, not a read
        name = self.free_name("outputs")
        self.insert(
            statement,
            "before",
            [f"{name} = {self.src.code(call)}"],
            f"the model call, assigned to {name}",
        )
        self.plan.edits.append(ReplaceExpression(call, name))
        return name

    def _unchanged_output(
        self, output: str, call: cst.Call, loss_statement: cst.BaseStatement
    ) -> str:
        """`output` as the model returned it at the hook: kept in a name of its own right
        after the call where the script binds `output` anew before the loss."""
        rebound, changed = changes_of(self.src, output, call, loss_statement)
        if changed:
            refuse_changed(self.src, output, call, changed[0])
        if not rebound:
            return output
        name = self.free_name("student_output")
        self.insert(
            self.src.statement_of(call),
            "after",
            [f"{name} = {output}"],
            f"the model's output before line {self.src.line(rebound[0])} binds {output} anew",
        )
        return name

    def _reads_model_call(
        self, statement: cst.CSTNode | None, call: cst.Call, loss_statement: cst.BaseStatement
    ) -> bool:
        """`name = call[0]` (reads of the call only) in the loops and function of the loss:
        naming the call's output there runs nothing more, nothing less."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        small = statement.body[0]
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return False
        found = accessed_call(small.value)
        if found is None or found[0] is not call:
            return False
        around_loss = set(map(id, self.src.ancestors(loss_statement)))
        return all(
            id(node) in around_loss
            for node in self.src.ancestors(statement)
            if isinstance(node, cst.For | cst.While | cst.FunctionDef | cst.If | cst.Try)
        )
