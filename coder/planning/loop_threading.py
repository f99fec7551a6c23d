"""The compression manager handed down to the functions on the training path (a
`compression_manager` parameter, `self.compression_manager` in the class, a closure
reading its function's), and the paths that keep it from reaching them.
A part of `LoopPlanner` (loop.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.expressions import passes_function
from neural_coder.analysis.index import Function, is_partial
from neural_coder.analysis.loop_types import Hop
from neural_coder.analysis.train_only import train_only
from neural_coder.errors import AnalysisError
from neural_coder.transforms.edits import AddKeywordArgument, AddParameter

from .closure_steps import ClosureSteps


class ManagerThreading(ClosureSteps):
    """A part of `LoopPlanner` (loop.py): the manager on the training path."""

    def _thread_manager(self, loop: TrainingLoop) -> dict[int, str]:
        """The expression naming the manager in every scope on the training path."""
        entry_cls = self.index.class_of(loop.entry_scope)
        cm_of = {
            id(loop.entry_scope): f"self.{self.cm_name}" if entry_cls is not None else self.cm_name
        }
        # the per-batch hooks inside the training step's function: the loop shared with
        # validation that calls it (`mini_batch(device, loader, step_fn)`) needs no manager
        hooks_in_step = (
            train_only(self.index, loop) is None and self._step_closure(loop) is not None
        )
        for hop in reversed(loop.hops):  # outermost first
            caller_cm = cm_of.get(id(self.index.scope_of(hop.call)), "")
            if (
                hooks_in_step
                and hop.function.node is loop.step_scope
                and hop.factory is None
                and not hop.returned_closure
                and not self._builds_the_step(loop, hop.function.node)
            ):
                continue
            # a step function the loop also calls directly (`optimizer.step(partial(
            # self.training_step, ...))`, or `self.training_step(...)` on the steps that
            # only accumulate gradients): the same training path
            same_loop = [
                c
                for c in self.index.call_sites(hop.function)
                if hop.closure_of is not None and self._in_step_loop(c, loop)
            ]
            # `run_epoch(..., train=False)` beside the training call: the step loop's hooks
            # run there too, so it gets the manager as well
            same_loop += [c for c in hop.companions if c not in same_loop]
            if hop.returned_closure:
                # `perform_train_step_fn`, kept in `self.train_step_fn`: it reads `self`
                if entry_cls is None or self.index.class_of(hop.function.node) is not entry_cls:
                    raise AnalysisError(
                        f"{hop.function.key}() holds the training step and is reached through "
                        f"an attribute of its class, but training starts outside that class",
                        path=self.src.path,
                        line=self.src.line(hop.function.node),
                        hint="start the epoch loop in a method of the same class",
                    )
                cm_of[id(hop.function.node)] = f"self.{self.cm_name}"
                continue
            if hop.factory is not None:
                cm_of[id(hop.function.node)] = self._thread_through_factory(hop, cm_of)
                continue
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

    def _builds_the_step(self, loop: TrainingLoop, fn: cst.FunctionDef) -> bool:
        """`fn` calls the factory that builds the training step (which reads its manager)."""
        factory = loop.hops[0].factory if loop.hops else None
        return factory is not None and self.index.scope_of(factory.factory_call) is fn

    def _thread_through_factory(self, hop: Hop, cm_of: dict[int, str]) -> str:
        """`make_train_step(model, loss_fn, optimizer)` builds the step closure: the
        manager is one more parameter of the factory, passed where it is called."""
        factory = hop.factory
        assert factory is not None
        caller_cm = cm_of.get(id(self.index.scope_of(factory.factory_call)))
        if caller_cm is None:
            raise AnalysisError(
                f"{hop.function.key}() holds the training step and is built by "
                f"{factory.factory.key}() at line {self.src.line(factory.factory_call)}, "
                "outside the function that runs the training loop",
                path=self.src.path,
                line=self.src.line(factory.factory_call),
                hint=f"call {factory.factory.key}() in the function that runs the epoch loop",
            )
        self._refuse_handed_over(factory.factory)
        self.plan.edits.append(AddParameter(factory.factory.node, self.cm_name))
        self.plan.edits.append(AddKeywordArgument(factory.factory_call, self.cm_name, caller_cm))
        self.plan.placed.append(
            f"line {self.src.line(factory.factory.node)}: {factory.factory.key}() takes "
            f"{self.cm_name} for the step it builds (passed at line "
            f"{self.src.line(factory.factory_call)})"
        )
        return self.cm_name

    def _refuse_handed_over(self, fn: Function) -> None:
        """`train_opt = torch.compile(train)` or `partial(train, ...)`: a library wraps the
        function and its callers call it without the manager the hooks inside read."""
        for call in self.index.calls:
            if self.index.resolve_call(call) is not None or is_partial(call):
                # a function of the file: its calls of the parameter are followed; a
                # partial is judged where it is handed on
                continue
            for arg in call.args:
                if (
                    passes_function(arg.value, fn.name)
                    and (fn.cls is None or isinstance(arg.value, cst.Attribute | cst.Call))
                    and not self._names_a_local(arg.value, call)
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

    def _names_a_local(self, value: cst.BaseExpression, at: cst.CSTNode) -> bool:
        """`DataLoader(train, ...)` where `train` is a variable of the function around
        `at` (`train = TensorDataset(...)`, a parameter): it shadows the training
        function of the same name, so no function is handed over."""
        if is_partial(value):
            assert isinstance(value, cst.Call)
            value = value.args[0].value
        if not isinstance(value, cst.Name):
            return False
        scope = self.index.scope_of(at)
        fn = self.index.function(scope)
        if fn is None:
            return False
        return bool(self.index.assignments_in(value.value, scope)) or value.value in fn.all_params()

    def _refuse_other_paths(self, fn: Function, taken: cst.Call, same_loop: list[cst.Call]) -> None:
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
