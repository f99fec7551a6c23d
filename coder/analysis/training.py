"""The training loop: backward, optimizer step, step loop, epoch loop, model, loss.

Starting from each `.backward()` the analysis climbs out through enclosing
loops and, where a function has no loop around the statement, through the call
sites that reach the function (`train(...)` called from an epoch loop in
`main()`, `self._run_batch(...)` called from `self._run_epoch(...)`). Every hop
is recorded, because the compression manager has to reach each function on it.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from . import kinds, steps
from .backward_calls import is_scaler_step_call, loss_name_of
from .climbing import CallClimbing
from .container_items import item_index, member_at
from .expressions import Loop, loop_index, loop_var, passes_function
from .index import Index, Scope, iter_returns
from .loop_length import LoopLength
from .loop_types import Hop, TrainingLoop
from .model_calls import ModelCalls

NOT_IN_A_LOOP = "the .backward() call is not inside a training loop"
NO_OPTIMIZER_STEP = "no optimizer step found"


class LoopAnalysis(CallClimbing, ModelCalls, LoopLength):
    def __init__(self, index: Index) -> None:
        self.teacher_calls: list[cst.Call] = []
        self._optimized: set[int] | None = None
        self.model_called_in: str | None = None
        self.self_called = False
        self.index = index
        self.source = index.source

    # -- the loop itself -----------------------------------------------------------------
    def analyze(self, backward: cst.Call) -> TrainingLoop:
        src = self.source
        self.step_comprehension = None
        self.model_called_in = None
        self.self_called = False
        statement = src.statement_of(backward)
        scope = self.index.scope_of(backward)
        loss_name = loss_name_of(self.index, backward)
        if loss_name is None:
            raise AnalysisError(
                "cannot tell which loss .backward() is called on",
                path=src.path,
                line=src.line(backward),
            )

        hops: list[Hop] = []
        closure = self._closure_hop(backward)
        if closure is not None:
            # `optimizer.step(closure)`: the loop reaches the backward through the step call
            hops.append(closure)
            assert closure.closure_of is not None
            step_call = closure.closure_of
            found = self.climb_to_loop(step_call, self.index.scope_of(step_call), hops)
            if found is None:
                hops.clear()
        else:
            found = self.climb_to_loop(backward, scope, hops)
        if found is None:
            raise AnalysisError(
                NOT_IN_A_LOOP,
                path=src.path,
                line=src.line(backward),
                hint="the tool places hooks in a for/while loop over batches",
            )
        step_loop, step_scope = found
        in_scaler = is_scaler_step_call(self.index, backward)
        if closure is not None:
            assert closure.closure_of is not None
            optimizer_step = self._hookable(closure.closure_of, statement)
            optimizer = src.code(closure.closure_of.func.value)  # type: ignore[attr-defined]
            other_steps: list[cst.BaseStatement] = []
        elif in_scaler:
            optimizer_step, optimizer, other_steps = self._scaler_step(backward, statement)
        else:
            optimizer_step, optimizer, other_steps = self._optimizer_step(
                scope, statement, step_loop
            )
        if (
            closure is None
            and step_scope is scope
            and not any(a is step_loop for a in src.ancestors(optimizer_step))
        ):
            # `for micro_step in range(accumulation): ... loss.backward()` then the
            # optimizer step after it: the step loop is the one around the optimizer step
            around = self.enclosing_loop(optimizer_step, scope)
            if around is not None:
                step_loop = around
        step_hops = list(hops)
        self.step_nodes = [statement, optimizer_step, *(h.via for h in hops if h.via is not None)]
        outer = self.climb_to_epoch_loop(step_loop, step_scope, hops)
        self.step_nodes = []
        epoch_loop, entry_scope = outer if outer else (None, step_scope)
        entry_loop = epoch_loop or step_loop

        loss_statement = self._loss_statement(loss_name, scope, statement)
        model_call, model_output, model_callee, model_method = self._model_call(
            scope, loss_statement, statement, optimizer
        )
        model_in_entry = self.map_up(model_callee, hops) if model_callee else None
        if model_in_entry is None and model_callee is None and hops:
            model_in_entry = self._model_from_caller(loss_name, hops, optimizer)
        if model_in_entry is None and model_callee is None and not self.self_called:
            # the loss is read from what an earlier call saved (REINFORCE's log-probs of
            # the actions `select_action()` sampled): the model the optimizer updates
            model_callee = self._model_the_optimizer_updates(optimizer, scope)
            model_in_entry = self.map_up(model_callee, hops) if model_callee else None
        model_item = None
        if model_in_entry is None and model_callee is not None:
            model_item = self._item_of_a_container(model_callee, scope, hops, entry_scope)
            if model_item is not None:
                model_in_entry = model_item[1]
        if model_in_entry is None:
            self._refuse_an_item_of_a_container(model_callee, scope, hops)
            self._refuse_a_model_training_itself(
                model_callee, entry_scope, loss_statement or statement
            )
            raise AnalysisError(
                "cannot tell which model the loop trains",
                path=src.path,
                line=src.line(loss_statement or statement),
                hint="mark the model's assignment with '# neural-coder: model'",
            )
        origin, origin_line = self._model_origin(model_callee or "", scope)
        loop = TrainingLoop(
            step_comprehension=self.step_comprehension,
            backward=statement,
            backward_scope=scope,
            loss_name=loss_name,
            loss_statement=loss_statement,
            optimizer_step=optimizer_step,
            optimizer=optimizer,
            other_steps=other_steps,
            model_call=model_call,
            model_output=model_output,
            model_inputs=self._inputs_text(model_call) if model_call is not None else None,
            step_loop=step_loop,
            step_scope=step_scope,
            step_index=loop_index(step_loop),
            epoch_loop=epoch_loop,
            epoch_var=loop_var(epoch_loop) if epoch_loop is not None else None,
            entry_loop=entry_loop,
            entry_scope=entry_scope,
            hops=hops,
            model_in_entry=model_in_entry,
            model_origin=origin,
            model_origin_line=origin_line,
            total_steps=None,
            step_in_scaler=in_scaler,
            step_runs_closure=closure is not None,
        )
        loop.total_steps = self._total_steps(loop, step_hops, hops[len(step_hops) :])
        if epoch_loop is not None:
            loop.epochs = self._iterations(epoch_loop)
        loop.model_method = model_method
        loop.model_item = model_item[0] if model_item is not None else None
        loop.model_called_in = self.model_called_in if model_call is None else None
        if self.teacher_calls:
            teacher = self.teacher_calls[0]
            loop.frozen_in_entry = [
                self.map_up(src.code(c.func), hops) or src.code(c.func) for c in self.teacher_calls
            ]
            loop.notes.append(
                f"line {src.line(teacher)}: {src.code(teacher.func)} is a frozen model "
                f"(a teacher, or a loss network): {model_callee} is the model the optimizer trains"
            )
            follows = self._moving_average_of(model_callee or "", scope)
            if follows is not None:
                loop.notes.append(
                    f"line {follows}: a copy follows {model_callee} as a moving average of "
                    f"its weights: only {model_callee} is compressed, not that copy, which the "
                    "script may also save"
                )
            teacher_inputs = {self._positional_inputs(c) for c in self.teacher_calls}
            student_inputs = self._positional_inputs(model_call) if model_call else None
            if student_inputs is not None and teacher_inputs != {student_inputs}:
                # DINO's EMA teacher sees the global views only: its outputs do not pair
                # with the student's, so a distillation loss cannot compare them
                loop.teacher_unpaired = (
                    f"{src.code(teacher.func)} at line {src.line(teacher)} is given "
                    f"{' / '.join(sorted(teacher_inputs))}, the student {student_inputs}: "
                    "its outputs do not pair with the student's"
                )
            else:
                callee = src.code(teacher.func)
                loop.teacher_in_entry = self.map_up(callee, hops)
                if loop.teacher_in_entry is None:
                    item = self._item_of_a_container(callee, scope, hops, entry_scope)
                    loop.teacher_in_entry = item[1] if item is not None else None
                outputs = {self._output_name(c) for c in self.teacher_calls}
                loop.teacher_output = outputs.pop() if len(outputs) == 1 else None
        return loop

    def _item_of_a_container(
        self, name: str, scope: Scope, hops: list[Hop], entry_scope: Scope
    ) -> tuple[str, str] | None:
        """(`module_list[0]`, `model_s`) when `name = module_list[0]` in `scope` and the
        caller that starts training fills `module_list` with `model_s` first."""
        if not hops:
            return None
        for a in self.index.assignments_in(name, scope):
            position = item_index(a.value)
            if position is None:
                continue
            container = self.map_up(self.source.code(a.value.value), hops)  # type: ignore[attr-defined]
            if container is None:
                continue
            before = self.source.line(hops[-1].call)
            member = member_at(self.index, container, entry_scope, position, before)
            if member is not None:
                return self.source.code(a.value), member
        return None

    def _refuse_an_item_of_a_container(
        self, model: str | None, scope: Scope, hops: list[Hop]
    ) -> None:
        """`model_s = module_list[0]` inside the training function: the model is an item
        of a container the caller fills, which the tool does not follow."""
        if model is None:
            return
        src = self.source
        for a in self.index.assignments_in(model, scope):
            if not isinstance(a.value, cst.Subscript):
                continue
            container = src.code(a.value.value)
            where = self.map_up(container, hops) if hops else None
            name = scope.name.value if isinstance(scope, cst.FunctionDef) else "the function"
            passed = f" ({where} where training starts)" if where and where != container else ""
            raise AnalysisError(
                f"the loop trains {model}, which is {src.code(a.value)}: an item of a container"
                f"{passed}, and the tool cannot tell which model of the caller that item is",
                path=src.path,
                line=src.line(a.statement),
                hint=f"hand the model to {name}() as an argument of its own "
                f"({name}(..., {model}, ...)) instead of taking it out of {container}",
            )

    def _positional_inputs(self, call: cst.Call) -> str:
        """The data a model call is given (its positional arguments; options such as
        `is_feat=True` or `scale=2` may differ between a teacher and its student)."""
        return ", ".join(
            f"{a.star}{self.source.code(a.value)}" for a in call.args if a.keyword is None
        )

    def _moving_average_of(self, model: str, scope: Scope) -> int | None:
        """The line of `zip(model.parameters(), other.parameters())` in `scope`, or of a
        helper given both (`update_ema(target.parameters(), model.parameters(), decay)`):
        an EMA update of a copy from the trained model (DINO, BYOL, MoCo, LCM style)."""
        root = model.split(".")[0]
        for call in self.index.calls:
            if self.index.scope_of(call) is not scope:
                continue
            owners = [
                self.source.code(a.value.func.value).split(".")[0]  # type: ignore[attr-defined]
                for a in call.args
                if m.matches(a.value, m.Call(func=m.Attribute(attr=m.Name("parameters"))))
            ]
            if len(owners) == 2 and root in owners and len(set(owners)) == 2:
                return self.source.line(call)
        return None

    def _model_from_caller(self, loss_name: str, hops: list[Hop], optimizer: str) -> str | None:
        """`self._backward(criterion(self.model(x), y))`: the step function receives the
        loss, and the model call is in the argument at the call site, or in the function
        that made it there (`loss = _forward(); _backward(loss)`, both defined in the
        loop body)."""
        first = hops[0]
        argument = self.index.bind_arguments(first.call, first.function).get(loss_name)
        if argument is None:
            return None
        caller = self.index.scope_of(first.call)
        calls = [c for c in m.findall(argument, m.Call()) if self._is_model_callee(c.func, caller)]  # type: ignore[union-attr]
        callees = {self.source.code(c.func) for c in calls}  # type: ignore[union-attr]
        if not callees and isinstance(argument, cst.Name):
            callees = self._model_in_returning_function(argument.value, first.call, optimizer)
        if len(callees) != 1:
            return None
        return self.map_up(callees.pop(), hops[1:])

    def _model_in_returning_function(self, name: str, call: cst.Call, optimizer: str) -> set[str]:
        """The model that `name = forward_fn()` (bound before `call`) computes its result
        from, read in `forward_fn`, a function of the file that takes no argument and
        returns a name: the model as the caller sees it (a closure's free name)."""
        src = self.source
        caller = self.index.scope_of(call)
        found: set[str] = set()
        for assigned in self.index.assignments_in(name, caller):
            value = assigned.value
            fn = self.index.resolve_call(value) if isinstance(value, cst.Call) else None
            if fn is None or value.args or src.line(assigned.statement) > src.line(call):
                continue
            for returned in iter_returns(fn.node):
                if not isinstance(returned.value, cst.Name):
                    continue
                statement = src.statement_of(returned)
                loss = self._loss_statement(returned.value.value, fn.node, statement)
                callee = self._model_call(fn.node, loss, statement, optimizer)[2]
                root = callee.split(".")[0] if callee else None
                if (
                    root
                    and root not in fn.all_params()
                    and not self.index.assignments_in(root, fn.node)
                ):
                    found.add(callee)
        return found

    def _closure_hop(self, backward: cst.CSTNode) -> Hop | None:
        """The function holding `backward`, reached through the optimizer step that runs it
        as its closure: `optimizer.step(closure)` (LBFGS and similar optimizers, a local
        `def closure(): ...`), `optimizer.step(partial(self.training_step, batch=batch))`."""
        fn = self.index.function(self.index.scope_of(backward))
        if fn is None:
            return None
        for call in self.index.calls:
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
                continue
            passed = [a.value for a in call.args if passes_function(a.value, fn.name)]
            if len(passed) != 1 or not self._is_optimizer(func.value, self.index.scope_of(call)):
                continue
            if isinstance(passed[0], cst.Attribute) and fn.cls is None:
                continue  # `self.fn` / `obj.fn` names a method, and `fn` is not one
            bound = passed[0] if isinstance(passed[0], cst.Call) else call
            return Hop(fn, bound, closure_of=call)
        return None

    def _optimizer_step(
        self, scope: Scope, backward: cst.BaseStatement, step_loop: Loop
    ) -> tuple[cst.BaseStatement, str, list[cst.BaseStatement]]:
        """The first optimizer step after `backward` on its path, its optimizer, and the
        steps of the other branches of any `if` that chooses between steps (AMP or not,
        an optimizer or a manual update)."""
        src = self.source
        after = src.line(backward)
        every_step = self._step_candidates(scope)
        candidates = [
            (node, name)
            for node, name in every_step
            if src.line(node) >= after and not steps.exclusive(src, node, backward)
        ]
        if not candidates:
            raise AnalysisError(
                f"{NO_OPTIMIZER_STEP} after the backward call at line {after}",
                path=src.path,
                line=src.line(step_loop),
                hint="the tool needs optimizer.step() (or scaler.step(optimizer)) in the same function as loss.backward()",
            )
        node, name = candidates[0]
        statement = self._hookable(node, backward)
        others: list[cst.BaseStatement] = []
        suites = steps.sibling_suites(src, statement, backward, step_loop)
        for other, _ in every_step:
            if steps.within(src, other, suites):
                hookable = self._hookable(other, backward)
                if hookable is not statement and hookable not in others:
                    others.append(hookable)
        return statement, name, others

    def _scaler_step(
        self, call: cst.Call, statement: cst.BaseStatement
    ) -> tuple[cst.BaseStatement, str, list[cst.BaseStatement]]:
        """`loss_scaler(loss, optimizer, ...)` on a line of its own: the step and its optimizer."""
        src = self.source
        if not isinstance(statement, cst.SimpleStatementLine) or isinstance(
            src.parent(statement), cst.SimpleStatementSuite
        ):
            raise AnalysisError(
                f"{src.code(call.func)}(...) (backward and optimizer step) shares its line",
                path=src.path,
                line=src.line(call),
                hint="put the scaler call on its own indented line",
            )
        return statement, src.code(call.args[1].value), []

    def _step_candidates(self, scope: Scope, nested: bool = True) -> list[tuple[cst.CSTNode, str]]:
        """`optimizer.step()`, `scaler.step(optimizer)` and manual parameter updates in
        `scope`, in source order; with `nested`, also the calls of a method of the same
        object that steps its optimizer (`self.optimizer_step()`: unscale, clip, step,
        zero the gradients, update the moving average), hooked around the call."""
        src = self.source
        found: list[tuple[cst.CSTNode, str]] = []
        for call in self.index.calls:
            if self.index.scope_of(call) is not scope:
                continue
            if nested and (inner := self._stepping_method(call)) is not None:
                found.append((call, inner))
                continue
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
                continue
            receiver = func.value
            if (
                call.args
                and m.matches(receiver, m.Name() | m.Attribute())
                and self._is_scaler(receiver, scope)
            ):
                found.append((call, src.code(call.args[0].value)))  # scaler.step(optimizer)
            elif not call.args and self._is_optimizer(receiver, scope):
                found.append((call, src.code(receiver)))
        for update in steps.manual_updates(src, scope):
            found.append((update, steps.MANUAL_UPDATE + src.code(update.iter)))
        found.sort(key=lambda item: src.line(item[0]))
        return found

    def _stepping_method(self, call: cst.Call) -> str | None:
        """The optimizer of `self.<method>()` (no arguments) when that method of the same
        class steps one optimizer held on `self`, which the caller can name too."""
        func = call.func
        if call.args or not (
            isinstance(func, cst.Attribute) and m.matches(func.value, m.Name("self"))
        ):
            return None
        fn = self.index.resolve_call(call)
        if fn is None or fn.cls is None:
            return None
        optimizers = {name for _, name in self._step_candidates(fn.node, nested=False)}
        if len(optimizers) != 1:
            return None
        name = optimizers.pop()
        return name if name.startswith("self.") else None

    def _hookable(self, node: cst.CSTNode, backward: cst.BaseStatement) -> cst.BaseStatement:
        """The statement of an optimizer step, when hooks can go before and after it."""
        src = self.source
        statement = src.statement_of(node)
        if statement is backward:
            raise AnalysisError(
                "loss.backward() and the optimizer step share one line",
                path=src.path,
                line=src.line(backward),
                hint="put the optimizer step on its own line so hooks can go between them",
            )
        if isinstance(src.parent(statement), cst.SimpleStatementSuite) or not isinstance(
            statement, cst.SimpleStatementLine | cst.For
        ):
            raise AnalysisError(
                "the optimizer step is on the same line as its 'if'",
                path=src.path,
                line=src.line(node),
                hint="put the optimizer step on its own indented line",
            )
        return statement

    def _is_optimizer(self, receiver: cst.BaseExpression, scope: Scope) -> bool:
        leaves = list(self.index.values_of(receiver, scope))
        if any(kinds.is_scheduler(self.index, leaf) for leaf, _ in leaves):
            return False
        if any(kinds.is_optimizer(self.index, leaf) for leaf, _ in leaves):
            return True
        text = self.source.code(receiver).lower()
        return "optim" in text or text.split(".")[-1] in {"opt", "optimizer"}

    def _is_scaler(self, receiver: cst.BaseExpression, scope: Scope) -> bool:
        leaves = list(self.index.values_of(receiver, scope))
        return any(
            kinds.is_grad_scaler(self.index, leaf) for leaf, _ in leaves
        ) or "scaler" in self.source.code(receiver)

    def _refuse_a_model_training_itself(
        self, model: str | None, entry_scope: Scope, at: cst.CSTNode
    ) -> None:
        """`def fit(self, loader, epochs)` on the model's own class, Keras-style: the loop
        trains `self`, which no compression manager can replace from inside the method."""
        cls = self.index.class_of(entry_scope)
        calls_self = any(m.matches(c.func, m.Name("self")) for c in m.findall(at, m.Call()))  # type: ignore[union-attr]
        if cls is None or not (model == "self" or calls_self or self.self_called):
            return
        fn = self.index.function(entry_scope)
        method = f"{cls.name.value}.{fn.name}()" if fn is not None else cls.name.value
        raise AnalysisError(
            f"the training loop is {method}, a method of the model's own class that trains "
            "`self`: the compressed model has to replace the one the script holds, which a "
            "method cannot do to its own instance",
            path=self.source.path,
            line=self.source.line(at),
            hint="move the loop into a function that takes the model "
            "(def fit(model, loader, ...)) and call it as fit(model, ...), then run again",
        )

    def _loss_statement(
        self, loss: str, scope: Scope, backward: cst.BaseStatement
    ) -> cst.BaseStatement | None:
        line = self.source.line(backward)
        before = [
            a
            for a in self.index.assignments_in(loss, scope)
            if self.source.line(a.statement) < line
        ]
        return (
            max(before, key=lambda a: self.source.line(a.statement)).statement if before else None
        )
