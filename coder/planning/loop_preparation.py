"""Where a hand-written loop's compression manager is prepared: the refusals and warnings
about the model it is prepared on (a wrap, autocast, a model method, a reload after
training), the caller that hands the model over, the recipe's facts and the pruning
schedule fitted to the run. A part of `LoopPlanner` (loop.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.expressions import free_names
from neural_coder.analysis.index import Scope
from neural_coder.analysis.precision import autocast_of
from neural_coder.analysis.weight_loads import binds, reloads
from neural_coder.analysis.wraps import unprepared_wrap, wrap_anchor
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import AddImport, AddKeywordArgument, AddParameter

from .averaged_copy import (
    MovingAverage,
    averaged_copy_name,
    averaged_module,
    statement_to_prepare_before,
)
from .caller import CallerSite, refuse_qat_before_a_weight_copy
from .float_reloads import FloatInstanceReloads
from .loop_step_hooks import HOOKS_INTEGRATION
from .stages import StagedPlanner


class ManagerPreparation(StagedPlanner, FloatInstanceReloads):
    """A part of `LoopPlanner` (loop.py): preparing the manager."""

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
            [f"fit_pruning_schedules({cm}.callbacks, {self.fitted_end_step(start, total_steps)})"],
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

    def _before_a_step_factory(self, loop: TrainingLoop, anchor: cst.CSTNode) -> cst.CSTNode:
        """`train_step = make_train_step(model, loss_fn, optimizer)` before the loop: the
        closure keeps the model and the manager it is given there, so both are prepared
        before that call (QAT's model replaced, the manager passed in)."""
        factory = next((h.factory for h in loop.hops if h.factory is not None), None)
        if factory is None or self.index.scope_of(factory.binding) is not loop.entry_scope:
            return anchor
        if self.src.line(factory.binding) >= self.src.line(anchor):
            return anchor
        self.plan.placed.append(
            f"the training step is built at line {self.src.line(factory.binding)}: the model "
            "is prepared before it"
        )
        return factory.binding

    def _before_the_average(
        self,
        average: MovingAverage,
        loop: TrainingLoop,
        model: str,
        anchor: cst.CSTNode,
        caller: CallerSite | None,
    ) -> cst.CSTNode | None:
        """QAT with a moving average (`ema = ModelEMA(model)`): where the manager is
        prepared so that the copy is made of the prepared, fake-quant model (whose int8
        conversion `track_copy` then does with the model's): before the statement that
        builds it, or `anchor` when it is built later. None, and the refusal (or its
        warning), when no such place has `model` bound and left alone until training."""
        holder = averaged_copy_name(self.index, average.call)
        module = averaged_module(self.index, average.call, holder) if holder else None
        found = (
            # a list of averaged tensors (diffusers' EMAModel) has no module to convert
            statement_to_prepare_before(self.index, average.call, anchor, average.scope)
            if caller is None and average.scope is loop.entry_scope and module is not None
            else None
        )
        host, outer = found or (None, None)
        if host is not None and outer is not None and host is not outer:
            body = list(getattr(self.src.parent(outer), "body", []))
            between = body[body.index(host) : body.index(outer)]
            if not self._defined_before(model, host, loop) or any(binds(s, model) for s in between):
                host = None
            else:
                refuse_qat_before_a_weight_copy(
                    self.index,
                    model,
                    loop.entry_scope,
                    self.src.line(host),
                    self.src.line(anchor),
                    f"the moving average at line {self.src.line(average.call)}",
                )
                self.plan.placed.append(
                    f"the moving average is built at line {self.src.line(average.call)}: "
                    f"{model} is prepared for QAT before it, so it averages the fake-quant model"
                )
        elif host is not None:
            host = anchor  # the copy is built after the manager is prepared
        if host is None:
            if warning := average.refuse(self.index):
                self.plan.warnings.append(warning)
        return host

    def _rebind_the_converted_copy(self, average: MovingAverage, cm: str) -> list[str]:
        """`ema = cm.converted_copy(ema)` after training for a copy held by a name (`ema =
        copy.deepcopy(model)`): the runtime cannot rebind it to its int8 module itself."""
        holder = averaged_copy_name(self.index, average.call)
        if holder is None or averaged_module(self.index, average.call, holder) != holder:
            return []
        return [f"{holder} = {cm}.converted_copy({holder})"]

    def _before_a_resume(self, loop: TrainingLoop, model: str, anchor: cst.CSTNode) -> cst.CSTNode:
        """QAT: `if args.resume: model.load_state_dict(ckpt["model"]);
        optimizer.load_state_dict(...)` (or `start_epoch = ckpt["epoch"] + 1`) in the block
        of the loop, before it, resumes a run from a checkpoint that the rewritten script
        saved with the model's observers and fake-quant state: that state dict fits the
        prepared model only, so the manager is prepared (and QAT set up) before the block.
        A float checkpoint still loads there (the runtime's `Model.load_state_dict` hands
        it to the float module, whose weights the prepared one shares)."""
        block = self.src.parent(anchor)
        body = getattr(block, "body", None)
        if not isinstance(body, list | tuple) or anchor not in body:
            return anchor
        siblings = list(body[: body.index(anchor)])
        scope = loop.entry_scope
        for position, statement in enumerate(siblings):
            if not isinstance(statement, cst.If) or not reloads(
                self.index, statement, model, scope
            ):
                continue
            if not self._restores_the_run(statement, loop):
                continue
            later = siblings[position:]
            if not self._defined_before(model, statement, loop) or any(
                binds(s, model) for s in later
            ):
                return anchor
            self.plan.placed.append(
                f"the run is resumed at line {self.src.line(statement)} from a checkpoint of "
                f"{model}: QAT is prepared before it, so a checkpoint this script saved (with "
                "its fake-quant state) loads back"
            )
            return statement
        return anchor

    def _restores_the_run(self, statement: cst.If, loop: TrainingLoop) -> bool:
        """`statement` loads the optimizer's state, or sets a name the loop header reads
        (`start_epoch`): a resumed run, not weights to start from."""
        code = self.src.code
        header = free_names(loop.entry_loop.iter) if isinstance(loop.entry_loop, cst.For) else set()
        for call in m.findall(statement, m.Call(func=m.Attribute(attr=m.Name("load_state_dict")))):
            if code(call.func.value) == loop.optimizer:  # type: ignore[attr-defined]
                return True
        return any(
            code(t.target) in header
            for assign in m.findall(statement, m.Assign())
            for t in assign.targets  # type: ignore[attr-defined]
        )

    def _warn_one_epoch_function(self, loop: TrainingLoop, scope: Scope) -> None:
        """`train_one_epoch(model, loader, ...)` of an engine.py that nothing in the file
        calls: its caller (in a script not given) runs it once per epoch, and each call
        would prepare the compression anew."""
        fn = self.index.function(scope)
        if loop.epoch_loop is not None or fn is None or self.index.call_sites(fn):
            return
        if scope is not loop.entry_scope:
            return
        self.plan.warnings.append(
            f"{fn.key}() makes one pass over its loader and nothing in this file calls it: "
            "if its caller runs it once per epoch, every call prepares the compression anew "
            "(pruning's schedule and QAT start again in each epoch); run the tool on the "
            f"script that calls {fn.key}(), with this file beside it"
        )

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
