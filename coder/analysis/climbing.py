"""Climbing from a statement out to the loop around it, through the call sites between."""

from __future__ import annotations

import libcst as cst

from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from .expressions import BUILTIN_NAMES, Loop, free_names, substitute
from .flag_paths import call_reaches
from .index import Function, Index, Scope
from .loop_types import Hop
from .returned_closures import factory_closure_call, returned_closure_call
from .source import Source

COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


class CallClimbing:
    """A part of `LoopAnalysis` (training.py): it reads `self.index` and `self.source`."""

    index: Index
    source: Source
    # the backward and optimizer step statements: the path the training call must reach
    step_nodes: list[cst.CSTNode] = []
    # the comprehension the training step runs in, between it and its loop
    step_comprehension: cst.CSTNode | None = None

    # -- climbing -------------------------------------------------------------------
    def enclosing_loop(self, node: cst.CSTNode, scope: Scope) -> Loop | None:
        for ancestor in self.source.ancestors(node):
            if ancestor is scope:
                return None
            if isinstance(ancestor, cst.For | cst.While):
                return ancestor
        return None

    def climb_to_epoch_loop(
        self, step_loop: Loop, scope: Scope, hops: list[Hop]
    ) -> tuple[Loop, Scope] | None:
        """The loop around the step loop, passing over a loop of phases
        (`for phase in ["train", "val"]:` inside `for epoch in ...:`, the transfer
        learning tutorial's layout): the epoch loop is the one around the phases."""
        outer = self.climb_to_loop(step_loop, scope, hops)
        if outer is None or not self.is_phase_loop(*outer):
            return outer
        further_hops = list(hops)
        further = self.climb_to_loop(outer[0], outer[1], further_hops)
        if further is None:
            return outer
        hops[:] = further_hops
        return further

    def is_phase_loop(self, loop: Loop, scope: Scope) -> bool:
        """`for phase in ["train", "val"]` (or over a name bound to such a list): a loop
        over a few string constants, not over epochs."""
        if not isinstance(loop, cst.For):
            return False
        values = [loop.iter]
        if isinstance(loop.iter, cst.Name):
            values = [a.value for a in self.index.assignments_in(loop.iter.value, scope)]
        return bool(values) and all(
            isinstance(v, cst.List | cst.Tuple | cst.Set)
            and bool(v.elements)
            and all(isinstance(e.value, cst.SimpleString) for e in v.elements)
            for v in values
        )

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
                self._note_a_comprehension_between(node, loop)
                hops.extend(taken)
                return loop, scope
            fn = self.index.function(scope)
            if fn is None or id(fn.node) in seen:
                return None
            seen.add(id(fn.node))
            companions: list[cst.Call] = []
            inner_hop = (taken or hops or [None])[-1]
            call = self._single_call_site(
                fn, node, companions, inner_hop
            ) or self._call_through_parameter(fn)
            via: cst.CSTNode | None = None
            closure = None if call is not None else returned_closure_call(self.index, fn)
            if closure is not None:
                call, via = closure.call, closure.via
            factory = None if call is not None else factory_closure_call(self.index, fn)
            if factory is not None:
                call = factory.call
            if call is None:
                return None
            taken.append(
                Hop(
                    fn,
                    call,
                    companions=companions,
                    returned_closure=closure is not None,
                    via=via,
                    factory=factory,
                )
            )
            node, scope = call, self.index.scope_of(call)

    def _note_a_comprehension_between(self, node: cst.CSTNode, loop: Loop) -> None:
        """`stats = [step(batch, True) for batch in loader]` inside the epoch loop: the step
        runs once per item of the comprehension, where no hook statement can go (kept for
        the training planners; a post-training fit after the loop is still right)."""
        for ancestor in self.source.ancestors(node):
            if ancestor is loop:
                return
            if isinstance(ancestor, COMPREHENSIONS):
                self.step_comprehension = ancestor
                return

    def _single_call_site(
        self,
        fn: Function,
        inner: cst.CSTNode,
        companions: list[cst.Call],
        inner_hop: Hop | None = None,
    ) -> cst.Call | None:
        """The call of `fn` on the training path. Of several calls in one loop, the one
        whose flag arguments lead to `inner` (`run_epoch(..., train=True)` beside
        `run_epoch(..., train=False)`), or that hands `fn` the training step's closure
        (`mini_batch(loader, train_step_fn)` beside `mini_batch(loader, val_step_fn)`);
        the others go to `companions`."""
        sites = self.index.call_sites(fn)
        handed = self._handing_the_step(fn, sites, inner_hop)
        if handed is not None and len(sites) > 1:
            loops = {id(self.enclosing_loop(c, self.index.scope_of(c))) for c in sites}
            if len(loops) == 1:
                companions.extend(c for c in sites if c is not handed)
                return handed
        if len(sites) > 1:
            in_loops = [
                c for c in sites if self.enclosing_loop(c, self.index.scope_of(c)) is not None
            ]
            sites = in_loops or sites
        if len(sites) > 1:
            inside = [
                inner,
                *(
                    n
                    for n in self.step_nodes
                    if any(a is fn.node for a in self.source.ancestors(n))
                ),
            ]
            reaching = [c for c in sites if call_reaches(self.index, fn, c, inside)]
            # the others (evaluation: `step(batch, is_train=False)`) in the same function,
            # where the manager the training call gets is in reach of them too
            scopes = {id(self.index.scope_of(c)) for c in sites}
            if len(reaching) == 1 and len(scopes) == 1:
                companions.extend(c for c in sites if c is not reaching[0])
                return reaching[0]
            if self._one_call_on_each_path(sites):
                companions.extend(sites[1:])
                return sites[0]
        return self._one_call_path(fn, sites, "called")

    def _one_call_on_each_path(self, sites: list[cst.Call]) -> bool:
        """The same call written on each path of one loop body: `with model.no_sync():
        loss = _forward(); _backward(loss)` under `if`, and the same two calls under its
        `else` (gradient accumulation in large training frameworks)."""
        scopes = {id(self.index.scope_of(c)) for c in sites}
        loops = {id(self.enclosing_loop(c, self.index.scope_of(c))) for c in sites}
        texts = {self.source.code(c) for c in sites}
        return (
            len(scopes) == 1
            and len(loops) == 1
            and None not in {self.enclosing_loop(sites[0], self.index.scope_of(sites[0]))}
            and len(texts) == 1
        )

    def _handing_the_step(
        self, fn: Function, sites: list[cst.Call], inner_hop: Hop | None
    ) -> cst.Call | None:
        """The one call of `fn` that hands it the factory-built step closure `inner_hop`
        runs (through the parameter `fn` calls)."""
        factory = inner_hop.factory if inner_hop is not None else None
        if factory is None or not isinstance(factory.call.func, cst.Name):
            return None
        param = factory.call.func.value
        if param not in fn.all_params():
            return None
        holder = factory.holder
        handing = [
            c
            for c in sites
            if m.matches(self.index.bind_arguments(c, fn).get(param), m.Name(holder))
        ]
        return handing[0] if len(handing) == 1 else None

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
        return substitute(text, replacements)

    def _map_name(self, name: str, hop: Hop) -> str | None:
        fn = hop.function
        caller_scope = self.index.scope_of(hop.call)
        factory = hop.factory
        if (
            factory is not None
            and name in factory.factory.all_params()
            and not self.index.assignments_in(name, fn.node)
            and name not in fn.all_params()
        ):
            # the factory's parameter the closure reads: what the factory call binds to it
            arg = self.index.bind_arguments(factory.factory_call, factory.factory).get(name)
            if arg is None:
                return None
            text = self.source.code(arg)
            return text if isinstance(arg, cst.Name | cst.Attribute | cst.Call) else f"({text})"
        if name == "self" and fn.cls is None and self.index.class_of(fn.node) is not None:
            # a closure of a method reads the method's `self`: the same object in a
            # caller of the same class
            same = self.index.class_of(caller_scope) is self.index.class_of(fn.node)
            return name if same else None
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
        if self.index.assignments_in(name, fn.node):
            return None  # the callee's own local (`model_s = module_list[0]`), not the caller's
        # A builtin, or a name the function reads from an enclosing (module) scope.
        visible = name in BUILTIN_NAMES or self._visible_from(name, caller_scope)
        return name if visible else None

    def _visible_from(self, name: str, scope: Scope) -> bool:
        module = self.source.module_of(scope)
        at_module = (
            self.index.assignments_in(name, module)
            or name in self.index.imports_of(module)
            # a settings class of the script (`class CFG: accum_steps = 2`) read as `CFG.x`
            or any(
                c.name.value == name and self.source.parent(c) is module
                for c in self.index.classes_in.get(module, [])
            )
        )
        if scope is module:
            return bool(at_module)
        fn = self.index.function(scope)
        local = self.index.assignments_in(name, scope) or (
            fn is not None and name in fn.all_params()
        )
        return bool(local or at_module)
