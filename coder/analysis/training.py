"""The training loop: backward, optimizer step, step loop, epoch loop, model, loss.

Starting from each `.backward()` the analysis climbs out through enclosing
loops and, where a function has no loop around the statement, through the call
sites that reach the function (`train(...)` called from an epoch loop in
`main()`, `self._run_batch(...)` called from `self._run_epoch(...)`). Every hop
is recorded, because the compression manager has to reach each function on it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

import libcst as cst

from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from . import kinds, steps
from .index import Function, Index, Scope, unwrap_pass_through
from .roles import all_optimized_leaves, split_roles

Loop = cst.For | cst.While
BUILTIN_NAMES = frozenset(dir(builtins))
WRAPPING_ITERATORS = frozenset({"enumerate", "tqdm", "iter"})
MARKER_MODEL = "neural-coder: model"
NOT_IN_A_LOOP = "the .backward() call is not inside a training loop"
NO_OPTIMIZER_STEP = "no optimizer step found"


@dataclass
class Hop:
    """`function` is reached through `call` (which lives in the caller's scope)."""

    function: Function
    call: cst.Call


@dataclass
class TrainingLoop:
    backward: cst.BaseStatement
    backward_scope: Scope
    loss_name: str
    loss_statement: cst.BaseStatement | None
    optimizer_step: cst.BaseStatement
    optimizer: str
    # the optimizer steps of the other branches of an `if` that chooses the step
    other_steps: list[cst.BaseStatement]
    model_call: cst.Call | None
    model_output: str | None
    model_inputs: str | None
    step_loop: Loop
    step_scope: Scope
    step_index: str | None
    epoch_loop: Loop | None
    epoch_var: str | None
    entry_loop: Loop
    entry_scope: Scope
    hops: list[Hop]  # from the backward scope up to the entry scope
    model_in_entry: str
    model_origin: str | None
    model_origin_line: int | None
    total_steps: str | None
    # the epoch loop's iteration count, valid where the entry loop is (None: unknown)
    epochs: str | None = None
    # N of `if (i + 1) % N == 0: optimizer.step()`, as written in the step's scope
    accumulation: str | None = None
    notes: list[str] = field(default_factory=list)
    # the same step reached by another backward call (AMP or not): its loss and steps
    alternatives: list[TrainingLoop] = field(default_factory=list)
    # a frozen model the script already runs next to the trained one (teacher-student)
    teacher_in_entry: str | None = None
    teacher_output: str | None = None  # its output, in the backward scope
    # `loss = self._loss_step(batch)`: the function that calls the model (for messages)
    model_called_in: str | None = None
    # timm's `loss_scaler(loss, optimizer, ...)` runs the backward and the optimizer step:
    # the optimizer-step hooks ride on the optimizer itself (optimizer_step_hooks)
    step_in_scaler: bool = False


def find_backward_calls(index: Index) -> list[cst.Call]:
    found = []
    scaler_calls = [c for c in index.calls if is_scaler_step_call(index, c)]
    for call in index.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            if not (scaler_calls and _in_scaler_call_method(index, call)):
                found.append(call)
    return sorted([*found, *scaler_calls], key=index.source.line)


def _in_scaler_call_method(index: Index, call: cst.Call) -> bool:
    """The backward inside the `__call__` of a scaler class the file defines (the
    backward of every `loss_scaler(loss, optimizer)` call, not a loop of its own)."""
    scope = index.scope_of(call)
    cls = index.class_of(scope)
    return (
        cls is not None
        and "scaler" in cls.name.value.lower()
        and isinstance(scope, cst.FunctionDef)
        and scope.name.value == "__call__"
    )


def is_scaler_step_call(index: Index, call: cst.Call) -> bool:
    """timm's `loss_scaler(loss, optimizer, clip_grad=..., parameters=...)`: the scaler
    object's `__call__` runs `loss.backward()`, unscales and clips the gradients and
    steps the optimizer (NativeScaler, and the copies of it in DeiT / MAE / BEiT)."""
    func = call.func
    if not isinstance(func, cst.Name | cst.Attribute):
        return False
    name = index.source.code(func).split(".")[-1].lower()
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if "scaler" not in name or len(positional) < 2 or not isinstance(positional[0].value, cst.Name):
        return False
    second = positional[1].value
    scope = index.scope_of(call)
    text = index.source.code(second).split(".")[-1].lower()
    return (
        "optim" in text
        or text == "opt"
        or any(kinds.is_optimizer(index, leaf) for leaf, _ in index.values_of(second, scope))
    )


def loss_name_of(index: Index, call: cst.Call) -> str | None:
    """`loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`,
    `loss_scaler(loss, optimizer, ...)`."""
    if is_scaler_step_call(index, call):
        first = call.args[0].value
        return first.value if isinstance(first, cst.Name) else None
    assert isinstance(call.func, cst.Attribute)
    receiver = call.func.value
    if call.args and not isinstance(receiver, cst.Call) and not call.args[0].keyword:
        # accelerator.backward(loss) / manual_backward(loss)
        candidate = call.args[0].value
        if isinstance(candidate, cst.Name):
            return candidate.value
    if isinstance(receiver, cst.Call) and receiver.args:
        receiver = receiver.args[0].value
    names = [n.value for n in _names_in(receiver)]
    return names[0] if names else None


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    return list(m.findall(node, m.Name()))  # type: ignore[arg-type]


class LoopAnalysis:
    def __init__(self, index: Index) -> None:
        self.teacher_calls: list[cst.Call] = []
        self._optimized: set[int] | None = None
        self.model_called_in: str | None = None
        self.index = index
        self.source = index.source

    # -- climbing -------------------------------------------------------------------
    def enclosing_loop(self, node: cst.CSTNode, scope: Scope) -> Loop | None:
        for ancestor in self.source.ancestors(node):
            if ancestor is scope:
                return None
            if isinstance(ancestor, cst.For | cst.While):
                return ancestor
        return None

    def climb_to_loop(
        self, node: cst.CSTNode, scope: Scope, hops: list[Hop]
    ) -> tuple[Loop, Scope] | None:
        """The nearest loop around `node`, following call sites out of functions.
        The hops taken are appended to `hops` only when a loop is found."""
        taken: list[Hop] = []
        seen: set[int] = set()
        while True:
            loop = self.enclosing_loop(node, scope)
            if loop is not None:
                hops.extend(taken)
                return loop, scope
            fn = self.index.function(scope)
            if fn is None or id(fn.node) in seen:
                return None
            seen.add(id(fn.node))
            call = self._single_call_site(fn) or self._call_through_parameter(fn)
            if call is None:
                return None
            taken.append(Hop(fn, call))
            node, scope = call, self.index.scope_of(call)

    def _single_call_site(self, fn: Function) -> cst.Call | None:
        sites = self.index.call_sites(fn)
        if len(sites) > 1:
            in_loops = [
                c for c in sites if self.enclosing_loop(c, self.index.scope_of(c)) is not None
            ]
            sites = in_loops or sites
        return self._one_call_path(fn, sites, "called")

    def _call_through_parameter(self, fn: Function) -> cst.Call | None:
        """`fit(train_step, loader)` where `fit` runs `step_fn(batch)` in its loop: the call
        of the parameter that receives `fn`. A step function handed over to a loop
        function in the file is reached through that call."""
        if fn.cls is not None:
            return None
        found: list[cst.Call] = []
        for call in self.index.calls:
            callee = self.index.resolve_call(call)
            if callee is None or callee is fn:
                continue
            for param, value in self.index.bind_arguments(call, callee).items():
                if not m.matches(value, m.Name(fn.name)):
                    continue
                found.extend(
                    c
                    for c in self.index.calls
                    if m.matches(c.func, m.Name(param)) and self.index.scope_of(c) is callee.node
                )
        return self._one_call_path(fn, found, "run")

    def _one_call_path(self, fn: Function, calls: list[cst.Call], how: str) -> cst.Call | None:
        """The one call that reaches the step function `fn`; several are refused."""
        if len(calls) > 1:
            lines = ", ".join(str(self.source.line(c)) for c in calls)
            raise AnalysisError(
                f"{fn.key}() holds the training step and is {how} from several places (lines {lines})",
                path=self.source.path,
                line=self.source.line(fn.node),
                hint="training hooks need one call path: give the other callers (a warm-up, a fine-tuning pass) "
                "a step function of their own",
            )
        return calls[0] if calls else None

    # -- mapping expressions between scopes ----------------------------------------------
    def map_up(self, text: str, hops: list[Hop]) -> str | None:
        """Rewrite an expression valid in the innermost hop's function so that it is
        valid at the outermost call site (parameters become arguments, `self.x`
        becomes `receiver.x`)."""
        for hop in hops:
            mapped = self._map_one(text, hop)
            if mapped is None:
                return None
            text = mapped
        return text

    def _map_one(self, text: str, hop: Hop) -> str | None:
        """Rewrite every name of `text` from the callee's scope to the caller's."""
        replacements: dict[str, str] = {}
        for name in free_names(cst.parse_expression(text)):
            mapped = self._map_name(name, hop)
            if mapped is None:
                return None
            replacements[name] = mapped
        return _substitute(text, replacements)

    def _map_name(self, name: str, hop: Hop) -> str | None:
        fn = hop.function
        caller_scope = self.index.scope_of(hop.call)
        if name == "self" and fn.cls is not None:
            if self.index.class_of(caller_scope) is fn.cls:
                return name
            func = hop.call.func
            return self.source.code(func.value) if isinstance(func, cst.Attribute) else None
        if name in fn.all_params():
            arg = self.index.bind_arguments(hop.call, fn).get(name)
            if arg is None:
                return None
            arg_text = self.source.code(arg)
            return (
                arg_text
                if isinstance(arg, cst.Name | cst.Attribute | cst.Call)
                else f"({arg_text})"
            )
        # A builtin, or a name the function reads from an enclosing (module) scope.
        visible = name in BUILTIN_NAMES or self._visible_from(name, caller_scope)
        return name if visible else None

    def _visible_from(self, name: str, scope: Scope) -> bool:
        module = self.source.module_of(scope)
        at_module = self.index.assignments_in(name, module) or name in self.index.imports_of(module)
        if scope is module:
            return bool(at_module)
        fn = self.index.function(scope)
        local = self.index.assignments_in(name, scope) or (
            fn is not None and name in fn.all_params()
        )
        return bool(local or at_module)

    # -- the loop itself -----------------------------------------------------------------
    def analyze(self, backward: cst.Call) -> TrainingLoop:
        src = self.source
        self.model_called_in = None
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
        found = self.climb_to_loop(backward, scope, hops)
        if found is None:
            closure = self._closure_step(backward)
            if closure is not None:
                name, step = closure
                raise AnalysisError(
                    f"the backward call is in {name}(), which the optimizer calls "
                    f"({src.code(step)}, LBFGS style): there is no "
                    "place between the backward and the optimizer step for the hooks",
                    path=src.path,
                    line=src.line(backward),
                    hint="compression hooks need loss.backward() and optimizer.step() as two "
                    "statements of the training loop",
                )
            raise AnalysisError(
                NOT_IN_A_LOOP,
                path=src.path,
                line=src.line(backward),
                hint="the tool places hooks in a for/while loop over batches",
            )
        step_loop, step_scope = found
        in_scaler = is_scaler_step_call(self.index, backward)
        if in_scaler:
            optimizer_step, optimizer, other_steps = self._scaler_step(backward, statement)
        else:
            optimizer_step, optimizer, other_steps = self._optimizer_step(
                scope, statement, step_loop
            )
        if step_scope is scope and not any(a is step_loop for a in src.ancestors(optimizer_step)):
            # `for micro_step in range(accumulation): ... loss.backward()` then the
            # optimizer step after it: the step loop is the one around the optimizer step
            around = self.enclosing_loop(optimizer_step, scope)
            if around is not None:
                step_loop = around
        step_hops = list(hops)
        outer = self.climb_to_loop(step_loop, step_scope, hops)
        epoch_loop, entry_scope = outer if outer else (None, step_scope)
        entry_loop = epoch_loop or step_loop

        loss_statement = self._loss_statement(loss_name, scope, statement)
        model_call, model_output, model_callee, model_method = self._model_call(
            scope, loss_statement, statement, optimizer
        )
        model_in_entry = self.map_up(model_callee, hops) if model_callee else None
        if model_in_entry is None and model_callee is None and hops:
            model_in_entry = self._model_from_caller(loss_name, hops)
        if model_in_entry is None:
            raise AnalysisError(
                "cannot tell which model the loop trains",
                path=src.path,
                line=src.line(loss_statement or statement),
                hint="mark the model's assignment with '# neural-coder: model'",
            )
        origin, origin_line = self._model_origin(model_callee or "", scope)
        loop = TrainingLoop(
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
            step_index=_loop_index(step_loop),
            epoch_loop=epoch_loop,
            epoch_var=_loop_var(epoch_loop) if epoch_loop is not None else None,
            entry_loop=entry_loop,
            entry_scope=entry_scope,
            hops=hops,
            model_in_entry=model_in_entry,
            model_origin=origin,
            model_origin_line=origin_line,
            total_steps=None,
            step_in_scaler=in_scaler,
        )
        loop.total_steps = self._total_steps(loop, step_hops, hops[len(step_hops) :])
        if epoch_loop is not None:
            loop.epochs = self._iterations(epoch_loop)
        loop.model_method = model_method
        loop.model_called_in = self.model_called_in if model_call is None else None
        if self.teacher_calls:
            teacher = self.teacher_calls[0]
            loop.teacher_in_entry = self.map_up(src.code(teacher.func), hops)
            outputs = {self._output_name(c) for c in self.teacher_calls}
            loop.teacher_output = outputs.pop() if len(outputs) == 1 else None
            loop.notes.append(
                f"line {src.line(teacher)}: {src.code(teacher.func)} is a frozen model "
                f"(a teacher): {model_callee} is the model the optimizer trains"
            )
        return loop

    def _model_from_caller(self, loss_name: str, hops: list[Hop]) -> str | None:
        """`self._backward(criterion(self.model(x), y))`: the step function receives the
        loss, and the model call is in the argument at the call site."""
        first = hops[0]
        argument = self.index.bind_arguments(first.call, first.function).get(loss_name)
        if argument is None:
            return None
        caller = self.index.scope_of(first.call)
        calls = [c for c in m.findall(argument, m.Call()) if self._is_model_callee(c.func, caller)]  # type: ignore[union-attr]
        callees = {self.source.code(c.func) for c in calls}  # type: ignore[union-attr]
        if len(callees) != 1:
            return None
        return self.map_up(callees.pop(), hops[1:])

    def _closure_step(self, backward: cst.CSTNode) -> tuple[str, cst.Call] | None:
        """The function holding `backward` and the `optimizer.step(fn)` call that passes
        it (the closure of LBFGS and similar optimizers)."""
        fn = self.source.enclosing_function(backward)
        if fn is None:
            return None
        name = fn.name.value
        for call in self.index.calls:
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "step"
                and any(_passes_function(a.value, name) for a in call.args)
            ):
                return name, call
        return None

    def _optimizer_step(
        self, scope: Scope, backward: cst.BaseStatement, step_loop: Loop
    ) -> tuple[cst.BaseStatement, str, list[cst.BaseStatement]]:
        """The first optimizer step after `backward` on its path, its optimizer, and the
        steps of the other branches of any `if` that chooses between steps (AMP or not,
        an optimizer or a manual update)."""
        src = self.source
        after = src.line(backward)
        candidates = [
            (node, name)
            for node, name in self._step_candidates(scope)
            if src.line(node) >= after and not steps.exclusive(src, node, backward)
        ]
        if not candidates:
            closure = self._closure_step(backward)
            if closure is not None:
                name, step = closure
                raise AnalysisError(
                    f"the backward call at line {after} is in {name}(), which "
                    f"{src.code(step.func)}(...) at line {src.line(step)} runs as its closure: "
                    "there is no place between the backward and the optimizer step for the hooks",
                    path=src.path,
                    line=after,
                    hint="compression hooks need loss.backward() and optimizer.step() as two "
                    "statements of the training loop (call the step function, then "
                    "optimizer.step() without a closure)",
                )
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
        for other, _ in self._step_candidates(scope):
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

    def _step_candidates(self, scope: Scope) -> list[tuple[cst.CSTNode, str]]:
        """`optimizer.step()`, `scaler.step(optimizer)` and manual parameter updates in
        `scope`, in source order."""
        src = self.source
        found: list[tuple[cst.CSTNode, str]] = []
        for call in self.index.calls:
            if self.index.scope_of(call) is not scope:
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
            found.append((update, f"manual update of {src.code(update.iter)}"))
        found.sort(key=lambda item: src.line(item[0]))
        return found

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

    def _model_call(
        self,
        scope: Scope,
        loss_statement: cst.BaseStatement | None,
        backward: cst.BaseStatement,
        optimizer: str,
    ) -> tuple[cst.Call | None, str | None, str | None, str | None]:
        """The call of the trained model whose output the loss is computed from: the
        call, the name its output is assigned to, the model as written, and the method
        when the call is one of the model's own methods (`module.training_step(...)`).
        Of several models, the one the optimizer updates; a frozen one's calls are
        left in `self.teacher_calls`."""
        src = self.source
        limit = src.line(backward)
        related: list[cst.CSTNode] = []
        if loss_statement is not None:
            # the statements the loss is computed from, followed back through names
            # (`logits = model(x)`; `losses = {"ce": ce(logits, y)}`; `loss = sum(losses.values())`)
            related.append(loss_statement)
            seen: set[str] = set()
            pending = [loss_statement]
            while pending and len(seen) < 64:
                statement = pending.pop()
                # where a callee comes from (`model = load_model(args)`) is not what the loss is computed from
                callees = {src.code(c.func) for c in m.findall(statement, m.Call())}  # type: ignore[union-attr]
                # in the order written: with the cap on `seen`, a set's order made the outcome
                # change from one run to the next (string hashes are salted per process)
                names = dict.fromkeys(n.value for n in _names_in(statement))
                for name in [n for n in names if n not in callees and n not in seen]:
                    seen.add(name)
                    for a in self.index.assignments_in(name, scope):
                        if src.line(a.statement) <= limit and a.statement not in related:
                            related.append(a.statement)
                            pending.append(a.statement)
        calls = list({id(c): c for node in related for c in m.findall(node, m.Call())}.values())
        if not calls:  # the loss is computed elsewhere; any model call in the step function
            calls = [
                c
                for c in self.index.calls
                if self.index.scope_of(c) is scope and src.line(c) <= limit
            ]
        methods = [c for c in calls if self._model_method(c, scope) is not None]
        models = [
            c
            for c in calls
            if isinstance(c, cst.Call) and c not in methods and self._is_model_callee(c.func, scope)
        ]
        # `model = Model(cfg).to(device)`, reached through `amp = check_amp(model)`, builds
        # the model that `model(imgs)` calls: it is not the call of a second model
        called = {src.code(c.func) for c in models}
        models = [c for c in models if not (self._assigned_to(c) & (called - {src.code(c.func)}))]
        # the loss name may also be bound before the loop (a one-off pass before training):
        # the calls in the loop around the backward are the training step's
        around = self.enclosing_loop(backward, scope)
        in_loop = [c for c in models if around is not None and around in set(src.ancestors(c))]
        models = in_loop or models
        if not models and not methods:
            callee = self._model_in_loss_function(calls)
            if callee is not None:
                return None, None, callee, None
        if not models:  # `loss = module.training_step(batch, i)`: a method of the model
            receivers = {src.code(c.func.value) for c in methods}  # type: ignore[attr-defined]
            if len(receivers) == 1:
                method = methods[0]
                return method, None, receivers.pop(), method.func.attr.value  # type: ignore[attr-defined]
        callees = {src.code(c.func) for c in models}
        self.teacher_calls = []
        if len(callees) > 1:
            marked = [c for c in models if self._has_marker(c)]
            roles = split_roles(self.index, models, scope, optimizer)
            if len(marked) == 1:
                models, callees = marked, {src.code(marked[0].func)}
            elif roles is not None:
                models, self.teacher_calls = roles.trained, roles.teachers
            else:
                raise AnalysisError(
                    f"the loss depends on several models ({', '.join(sorted(callees))})",
                    path=src.path,
                    line=src.line(models[0]),
                    hint="mark the line that calls the model to compress with '# neural-coder: model'",
                )
        if not models:
            return None, None, None, None
        call = models[0]
        return call, self._output_name(call), src.code(call.func), None

    def _model_in_loss_function(self, calls: list[cst.Call]) -> str | None:
        """`loss = self._loss_step(batch)`: a function of the script computes the loss and
        calls the model; the model as the caller names it (`self._model`), when the
        functions the loss comes from call one model."""
        src = self.source
        found: set[str] = set()
        for call in calls:
            fn = self.index.resolve_call(call)
            if fn is None:
                continue
            inner = {
                src.code(c.func)
                for c in self.index.calls
                if self.index.scope_of(c) is fn.node and self._is_model_callee(c.func, fn.node)
            }
            for callee in inner:
                mapped = self.map_up(callee, [Hop(fn, call)])
                if mapped is not None:
                    found.add(mapped)
                    self.model_called_in = f"{fn.key}() (line {src.line(fn.node)})"
        return found.pop() if len(found) == 1 else None

    def _output_name(self, call: cst.Call) -> str | None:
        """`out` of `out = model(x)` (or of `out, aux = model(x)`)."""
        statement = self.source.statement_of(call)
        if isinstance(statement, cst.SimpleStatementLine):
            small = statement.body[0]
            if isinstance(small, cst.Assign) and len(small.targets) == 1 and small.value is call:
                target = small.targets[0].target
                if isinstance(target, cst.Tuple | cst.List) and target.elements:
                    target = target.elements[0].value  # `logits, aux = model(x)`: the logits
                if isinstance(target, cst.Name):
                    return target.value
        return None

    def _assigned_to(self, call: cst.Call) -> set[str]:
        """The targets of the assignment whose value holds `call`."""
        statement = self.source.statement_of(call)
        if not isinstance(statement, cst.SimpleStatementLine):
            return set()
        return {
            self.source.code(t.target)
            for small in statement.body
            if isinstance(small, cst.Assign)
            for t in small.targets
        }

    def _model_method(self, call: cst.BaseExpression, scope: Scope) -> str | None:
        """`step` when `call` is `model.step(...)` on a model of the file's own class
        that defines `step` (a training_step in the style of Lightning)."""
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            return None
        receiver, method = call.func.value, call.func.attr.value
        if method in ("forward", "__call__") or not _is_dotted_name(receiver):
            return None
        for leaf, _ in self.index.values_of(receiver, scope):
            name = kinds.callee(self.index, leaf)
            cls = self.index.classes.get(name or "")
            if cls is not None and kinds.is_model_class(self.index, cls):
                if any(
                    isinstance(s, cst.FunctionDef) and s.name.value == method for s in cls.body.body
                ):
                    return method
        return None

    def _has_marker(self, node: cst.CSTNode) -> bool:
        return MARKER_MODEL in self.source.line_text(node)

    def _is_model_callee(self, func: cst.BaseExpression, scope: Scope) -> bool:
        if not _is_dotted_name(func):
            return False
        qualified = self.index.qualified(func)
        if (
            qualified.startswith(("torch.", "F."))
            or qualified.split(".")[-1] in kinds.OPTIMIZER_NAMES
        ):
            return False
        for leaf, _ in self.index.values_of(func, scope):
            if kinds.model_kind(self.index, leaf) is not None:
                return True
            if self._has_marker(leaf):
                return True
        if self._optimized is None:
            self._optimized = all_optimized_leaves(self.index)
        if any(id(leaf) in self._optimized for leaf, _ in self.index.values_of(func, scope)):
            return True  # an optimizer updates its parameters (a class from another module)
        text = self.source.code(func).split(".")[-1].lower()
        return text in {"model", "net", "network", "student", "module"} or text.endswith("model")

    def _model_origin(self, callee: str, scope: Scope) -> tuple[str | None, int | None]:
        if not callee:
            return None, None
        for leaf, _ in self.index.values_of(cst.parse_expression(callee), scope):
            kind = kinds.model_kind(self.index, leaf)
            if kind is not None and leaf in self.source.positions:
                return kind, self.source.line(leaf)
        return None, None

    def _inputs_text(self, call: cst.Call) -> str:
        """The model's inputs as one expression the teacher can be called with (INC's
        dispatch: a mapping as keywords, a tuple as positional arguments, else one
        argument); `ModelInputs(...)` (runtime only) for positional and keyword together."""
        src = self.source
        args = call.args

        def arg(a: cst.Arg) -> str:
            return f"{a.star}{src.code(a.value)}"

        if len(args) == 1 and args[0].star == "**":
            return src.code(args[0].value)
        if len(args) == 1 and args[0].star == "*":
            return f"tuple({src.code(args[0].value)})"
        if len(args) == 1 and not args[0].keyword and not args[0].star:
            return src.code(args[0].value)
        keywords = [a for a in args if a.keyword is not None or a.star == "**"]
        if keywords and len(keywords) == len(args):
            return (
                "dict("
                + ", ".join(
                    f"{a.keyword.value}={src.code(a.value)}" if a.keyword else arg(a) for a in args
                )
                + ")"
            )
        if keywords:
            return (
                "ModelInputs("
                + ", ".join(
                    f"{a.keyword.value}={src.code(a.value)}" if a.keyword else arg(a) for a in args
                )
                + ")"
            )
        items = ", ".join(arg(a) for a in args)
        return f"({items},)" if len(args) == 1 else f"({items})"

    # -- run length ------------------------------------------------------------------------
    def _total_steps(
        self, loop: TrainingLoop, step_hops: list[Hop], outer_hops: list[Hop]
    ) -> str | None:
        """An expression, valid where the entry loop is, for the optimizer steps in the run."""
        limit = self._step_limit(loop.step_loop)
        if limit is not None:
            # `if completed_steps >= args.max_train_steps: break`: the run's real length
            mapped = self.map_up(limit, outer_hops)
            if mapped is not None:
                return mapped
        per_epoch = self._iterations(loop.step_loop)
        if per_epoch is None:
            loop.notes.append("could not tell how many batches the step loop runs")
            return None
        # The step loop may sit in a function below the entry scope.
        per_epoch = self.map_up(per_epoch, outer_hops)
        if per_epoch is None:
            loop.notes.append("the step loop's data loader is not visible where training starts")
            return None
        accumulation = self._accumulation(loop)
        if accumulation is not None:
            per_epoch = f"{per_epoch} // {accumulation}"
        if loop.epoch_loop is None:
            return per_epoch
        epochs = self._iterations(loop.epoch_loop)
        if epochs is None:
            loop.notes.append("could not tell how many epochs the run has")
            return None
        return f"{epochs} * {per_epoch}"

    def _iterations(self, node: Loop) -> str | None:
        if isinstance(node, cst.While):
            return _while_bound(node)
        iterable = self._unwrap_iterable(node.iter, node)
        if iterable is None:
            return None
        if isinstance(iterable, cst.Call) and self.source.code(iterable.func) in {
            "range",
            "trange",
        }:
            args = iterable.args
            if len(args) == 1:
                inner = self.source.code(args[0].value)
                return (
                    inner
                    if isinstance(args[0].value, cst.Name | cst.Attribute | cst.Integer)
                    else f"({inner})"
                )
            return f"len({self.source.code(iterable)})"
        if isinstance(iterable, cst.Name | cst.Attribute):
            return f"len({self.source.code(iterable)})"
        return None

    def _step_limit(self, step_loop: Loop) -> str | None:
        """`LIMIT` of `if counter >= LIMIT: break` in the step loop's body (not in a
        nested loop): a budget of steps that ends the run (`--max_train_steps`)."""
        src = self.source
        for node in m.findall(step_loop.body, m.If()):
            assert isinstance(node, cst.If)
            ends = m.findall(node.body, m.Break() | m.Return())
            if not ends or self.enclosing_loop(ends[0], self.index.scope_of(node)) is not step_loop:
                continue
            tests = [node.test]
            if isinstance(node.test, cst.BooleanOperation) and isinstance(
                node.test.operator, cst.And
            ):
                tests = [node.test.left, node.test.right]
            for test in tests:
                if (
                    isinstance(test, cst.Comparison)
                    and len(test.comparisons) == 1
                    and isinstance(
                        test.comparisons[0].operator, cst.GreaterThanEqual | cst.GreaterThan
                    )
                    and isinstance(test.left, cst.Name | cst.Attribute)
                    and isinstance(test.comparisons[0].comparator, cst.Name | cst.Attribute)
                ):
                    return src.code(test.comparisons[0].comparator)
        return None

    def _unwrap_iterable(
        self, iterable: cst.BaseExpression, loop: Loop, depth: int = 0
    ) -> cst.BaseExpression | None:
        """What a loop really iterates over: through `enumerate(...)`, `tqdm(...)`,
        progress loggers that take the loader (`metric_logger.log_every(loader, 10)`), and
        names bound to those in the loop's scope (`pbar = enumerate(loader)`)."""
        src = self.source
        if depth > 8:
            return None
        if isinstance(iterable, cst.Call):
            name = src.code(iterable.func).split(".")[-1]
            if name in {"range", "trange"}:
                return iterable
            positional = [a.value for a in iterable.args if a.keyword is None and not a.star]
            if name in WRAPPING_ITERATORS or any(self._is_loader(a, loop) for a in positional):
                if not positional:
                    return None
                return self._unwrap_iterable(positional[0], loop, depth + 1)
            return iterable
        if isinstance(iterable, cst.Name):
            scope = self.index.scope_of(loop)
            before = [
                a
                for a in self.index.assignments_in(iterable.value, scope)
                if src.line(a.statement) < src.line(loop)
            ]
            if before and not self._is_loader(iterable, loop):
                # `pbar = enumerate(loader)`; `if rank == 0: pbar = tqdm(pbar)`: the first binding
                first = min(before, key=lambda a: src.line(a.statement))
                value = first.value
                if isinstance(value, cst.Call) and value is not iterable:
                    inner = self._unwrap_iterable(value, loop, depth + 1)
                    if inner is not value:
                        return inner
        return iterable

    def _is_loader(self, expr: cst.BaseExpression, loop: Loop) -> bool:
        if not isinstance(expr, cst.Name | cst.Attribute):
            return False
        scope = self.index.scope_of(loop)
        if any(
            kinds.is_dataloader(self.index, leaf) for leaf, _ in self.index.values_of(expr, scope)
        ):
            return True
        return "loader" in self.source.code(expr).split(".")[-1].lower()

    def _accumulation(self, loop: TrainingLoop) -> str | None:
        """`N` in `if (i + 1) % N == 0: optimizer.step()`, or in
        `loss_scaler(loss, optimizer, update_grad=(i + 1) % N == 0)`."""
        if loop.step_in_scaler:
            return self._scaler_accumulation(loop)
        for ancestor in self.source.ancestors(loop.optimizer_step):
            if ancestor is loop.step_loop:
                return None
            if isinstance(ancestor, cst.If):
                for modulo in m.findall(ancestor.test, m.BinaryOperation(operator=m.Modulo())):
                    assert isinstance(modulo, cst.BinaryOperation)
                    divisor = self.source.code(modulo.right)
                    loop.accumulation = divisor
                    mapped = self.map_up(divisor, loop.hops)
                    if mapped is None:
                        loop.notes.append(
                            f"gradient accumulation by {divisor} is not visible where training starts"
                        )
                    return mapped
                self._note_skipped_steps(loop, ancestor)
        return None

    def _scaler_accumulation(self, loop: TrainingLoop) -> str | None:
        call = next(
            iter(
                m.findall(
                    loop.optimizer_step,
                    m.Call(
                        args=[m.ZeroOrMore(), m.Arg(keyword=m.Name("update_grad")), m.ZeroOrMore()]
                    ),
                )
            ),
            None,
        )
        if call is None:
            return None
        assert isinstance(call, cst.Call)
        flag = next(a.value for a in call.args if a.keyword and a.keyword.value == "update_grad")
        for modulo in m.findall(flag, m.BinaryOperation(operator=m.Modulo())):
            assert isinstance(modulo, cst.BinaryOperation)
            divisor = self.source.code(modulo.right)
            loop.accumulation = divisor
            mapped = self.map_up(divisor, loop.hops)
            if mapped is None:
                loop.notes.append(
                    f"gradient accumulation by {divisor} is not visible where training starts"
                )
            return mapped
        loop.notes.append(
            f"the scaler steps the optimizer only when update_grad={self.source.code(flag)}: "
            "the run length counts batches, so pruning may end later than planned; pass "
            "--end-step with the number of optimizer steps"
        )
        return None

    def _note_skipped_steps(self, loop: TrainingLoop, chain: cst.If) -> None:
        """An optimizer step that some batches skip (`if ni - last_opt_step >= accumulate:`)
        in a way the tool cannot count: the schedule's length is then only an upper bound."""
        src = self.source
        if isinstance(src.parent(chain), cst.If) or steps.branch_holding(src, loop.backward, chain):
            return
        holding = steps.branch_holding(src, loop.optimizer_step, chain)
        others = [b for b in steps.branches(chain) if b is not holding]
        if any(steps.within(src, s, others) for s in loop.other_steps):
            return  # a choice between two steps, each hooked
        loop.notes.append(
            f"the optimizer step at line {src.line(loop.optimizer_step)} runs only when "
            f"{src.code(chain.test)}: the run length counts batches, so pruning may end later "
            "than planned; pass --end-step with the number of optimizer steps"
        )


def _passes_function(value: cst.BaseExpression, name: str) -> bool:
    """`fn`, `self.fn`, `partial(self.fn, ...)` / `functools.partial(fn, ...)`."""
    if isinstance(value, cst.Call) and value.args:
        if cst.Module([]).code_for_node(value.func).split(".")[-1] == "partial":
            value = value.args[0].value
    if isinstance(value, cst.Attribute):
        return value.attr.value == name
    return m.matches(value, m.Name(name))


def _is_dotted_name(expr: cst.BaseExpression) -> bool:
    while isinstance(expr, cst.Attribute):
        expr = expr.value
    return isinstance(expr, cst.Name)


def _while_bound(node: cst.While) -> str | None:
    """`N` in `while step < N` (a counter from 0 in steps of one is assumed)."""
    test = node.test
    if (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.left, cst.Name)
    ):
        target = test.comparisons[0]
        if isinstance(target.operator, cst.LessThan) and isinstance(
            target.comparator, cst.Name | cst.Attribute | cst.Integer
        ):
            return cst.Module(body=[]).code_for_node(target.comparator)
    return None


def free_names(expr: cst.BaseExpression) -> set[str]:
    """Names an expression reads (not attribute names, not keyword names)."""
    return {n.value for n in _free_names(expr)}


def _free_names(expr: cst.BaseExpression) -> list[cst.Name]:
    attrs = {id(a.attr) for a in m.findall(expr, m.Attribute())}  # type: ignore[union-attr]
    keywords = {id(a.keyword) for a in m.findall(expr, m.Arg()) if a.keyword is not None}  # type: ignore[union-attr]
    return [n for n in _names_in(expr) if id(n) not in attrs and id(n) not in keywords]


def _substitute(text: str, replacements: dict[str, str]) -> str:
    expr = cst.parse_expression(text)
    targets = {id(n) for n in _free_names(expr)}

    class Substitute(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
            if id(original_node) in targets and original_node.value in replacements:
                return cst.parse_expression(replacements[original_node.value])
            return updated_node

    return cst.Module(body=[]).code_for_node(expr.visit(Substitute()))


def _loop_var(node: Loop) -> str | None:
    if isinstance(node, cst.For) and isinstance(node.target, cst.Name):
        return node.target.value
    return None


def _loop_index(node: Loop) -> str | None:
    """`i` in `for i, batch in enumerate(loader)`; `step` in `for step in range(n)`."""
    if not isinstance(node, cst.For):
        return None
    is_enumerate = isinstance(node.iter, cst.Call) and m.matches(
        node.iter.func, m.Name("enumerate")
    )
    if (
        is_enumerate
        and isinstance(node.target, cst.Tuple)
        and isinstance(node.target.elements[0].value, cst.Name)
    ):
        return node.target.elements[0].value.value
    if isinstance(node.iter, cst.Call) and m.matches(node.iter.func, m.Name("range")):
        return _loop_var(node)
    return None


def unwrap(expr: cst.BaseExpression) -> cst.BaseExpression:
    return unwrap_pass_through(expr)
