"""The shared machinery of the component planners: attributes, and the 2.x training block
(`prepare_compression` + callbacks around the training). Their per-file state (edits, notes,
names) is `context.Ctx`, imported here for them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Scope

from .analysis import CONDITIONAL, Component, Use
from .codegen import code_of
from .context import Ctx
from .findings import Kind

# 1.x hook (and its deprecated aliases) -> 2.x `callbacks` method
HOOKS = {
    "on_train_begin": "on_train_begin",
    "pre_epoch_begin": "on_train_begin",
    "on_train_end": "on_train_end",
    "post_epoch_end": "on_train_end",
    "on_epoch_begin": "on_epoch_begin",
    "on_epoch_end": "on_epoch_end",
    "on_step_begin": "on_step_begin",
    "on_batch_begin": "on_step_begin",
    "on_step_end": "on_step_end",
    "on_batch_end": "on_step_end",
    "on_before_optimizer_step": "on_before_optimizer_step",
    "on_post_grad": "on_before_optimizer_step",
    "on_after_optimizer_step": "on_after_optimizer_step",
    "on_after_compute_loss": "on_after_compute_loss",
    "on_before_eval": "on_before_eval",
    "on_after_eval": "on_after_eval",
}
TRAINING_KINDS = ("pruning", "distillation", "combination")


# --------------------------------------------------------------------------------------
# component attributes (`quantizer.calib_dataloader = dl`) as values at the fit site


def unwrap_model(node: cst.BaseExpression, ctx: Ctx) -> cst.BaseExpression:
    """`common.Model(m)` -> `m` (2.x takes the framework model)."""
    if isinstance(node, cst.Call) and any(
        c is node for c, kind in ctx.a.common_calls if kind == "Model"
    ):
        ctx.handled.add(id(node))
        if len(node.args) == 1 and node.args[0].keyword is None:
            return node.args[0].value
    return node


SIMPLE = (cst.Name, cst.Attribute, cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString)


class Attrs:
    """The attributes set on a component before its fit call, as code usable there."""

    def __init__(self, ctx: Ctx, comp: Component, fit_stmt: cst.BaseStatement | None) -> None:
        self.ctx = ctx
        self.comp = comp
        self.fit_stmt = fit_stmt
        self.fit_scope = ctx.a.scope(fit_stmt) if fit_stmt is not None else comp.scope
        fit_at = ctx.a.pos(fit_stmt) if fit_stmt is not None else None
        self.sets: dict[str, Use] = {}
        self.every: list[Use] = [u for u in comp.uses if u.kind == "set"]
        for use in self.every:
            if fit_at is None or ctx.a.pos(use.stmt) < fit_at or use.scope is not self.fit_scope:
                self.sets[use.attr or ""] = use
        self.done: set[int] = set()
        self.defaults: list[str] = []  # `x = None` lines for conditionally set attributes
        self.hoisted: dict[str, tuple[str, Use]] = {}  # attr -> (variable, its set)
        self.cache: dict[int, str] = {}

    def has(self, *attrs: str) -> bool:
        return any(a in self.sets for a in attrs)

    def use(self, *attrs: str) -> Use | None:
        found = [self.sets[a] for a in attrs if a in self.sets]
        return max(found, key=lambda u: self.ctx.a.pos(u.stmt)) if found else None

    def literal(self, attr: str) -> tuple[bool, object]:
        """(True, value) when the attribute is set, before the fit, to a Python literal."""
        use = self.use(attr)
        if use is None or use.value is None or self._conditional(use):
            return False, None
        try:
            value = ast.literal_eval(code_of(use.value))
        except (ValueError, SyntaxError):
            return False, None
        self.done.add(id(use))
        self.ctx.remove(use.stmt)
        return True, value

    def node(self, *attrs: str) -> cst.BaseExpression | None:
        use = self.use(*attrs)
        return (
            unwrap_model(use.value, self.ctx) if use is not None and use.value is not None else None
        )

    def value(self, *attrs: str) -> str | None:
        """Code for the attribute's value at the fit site (moved there or held in a variable)."""
        use = self.use(*attrs)
        if use is None or use.value is None:
            return None
        for a in attrs:  # an alias set earlier is superseded: its statement goes too
            other = self.sets.get(a)
            if other is not None and other is not use:
                self._consume(other)
        return self._consume(use)

    def _consume(self, use: Use) -> str:
        if id(use) in self.cache:
            return self.cache[id(use)]
        self.cache[id(use)] = code = self._place(use)
        return code

    def _place(self, use: Use) -> str:
        ctx = self.ctx
        self.done.add(id(use))
        value = unwrap_model(use.value, ctx)  # type: ignore[arg-type]
        inline = code_of(value) if isinstance(value, SIMPLE) else None
        if isinstance(value, cst.Call):
            inline = ctx.common_code(value)
        conditional = self._conditional(use)
        if inline is not None and not conditional and self._same_names(value, use.scope):
            ctx.remove(use.stmt)
            return inline
        var = ctx.names.fresh(f"{self.comp.name}_{use.attr}")
        if not ctx.a.visible(var, self.fit_scope, use.scope):
            ctx.note(
                use.stmt,
                "TODO",
                f"`{self.comp.name}.{use.attr}` is set in another function than the one that runs the migrated code; pass the value there",
            )
            ctx.remove(use.stmt)
            return code_of(value)
        target = use.node.targets[0].target  # type: ignore[union-attr]
        ctx.replace_expr(target, lambda _u, v=var: cst.Name(v))
        if value is not use.value:
            ctx.replace_expr(use.value, lambda _u, v=value: v)  # type: ignore[arg-type]
        if conditional:
            self.defaults.append(f"{var} = None")
        self.hoisted[use.attr or ""] = (var, use)
        if isinstance(value, cst.Lambda) and isinstance(value.body, cst.Call):
            if isinstance(value.body.func, cst.Name):
                ctx.lambda_calls[var] = value.body.func.value
        return var

    def code_at(self, attr: str, code: str, scope: Scope) -> bool:
        """Is `code` (what `value(attr)` returned) valid where `scope` reads it?"""
        a = self.ctx.a
        if attr in self.hoisted and self.hoisted[attr][0] == code:
            return a.visible(code, scope, self.hoisted[attr][1].scope)
        use = self.use(attr)
        base = use.scope if use is not None else self.fit_scope
        return all(a.same_binding(n, base, scope) for n in a.names_in(cst.parse_expression(code)))

    def _conditional(self, use: Use) -> bool:
        """Might the fit run without this assignment having run? (Under an if/for/...
        that does not also hold the fit statement.)"""
        if self.fit_stmt is None or use.scope is not self.fit_scope:
            return use.conditional
        a = self.ctx.a
        fit_blocks = {id(b) for b in a.ancestors(self.fit_stmt)}
        for anc in a.ancestors(use.stmt):
            if id(anc) in fit_blocks:
                return False
            if isinstance(anc, CONDITIONAL):
                return True
        return False

    def _same_names(self, value: cst.CSTNode, scope: Scope) -> bool:
        a = self.ctx.a
        return all(a.same_binding(n, scope, self.fit_scope) for n in a.names_in(value))

    def finish(self, why: dict[str, str]) -> None:
        """Report what no 2.x argument took, and replace the constructor statement
        (by the `x = None` defaults of conditionally set attributes, or by nothing)."""
        self.report_leftovers(why)
        ctx = self.ctx
        ctx.handled.add(id(self.comp.ctor))
        if self.defaults:
            ctx.replace(self.comp.stmt, ctx.gen(self.defaults, self.comp.stmt))
        else:
            ctx.remove(self.comp.stmt)

    def leftovers(self) -> list[Use]:
        return [u for u in self.every if id(u) not in self.done]

    def report_leftovers(self, why: dict[str, str]) -> None:
        """Attributes no 2.x argument takes, in place of the statement (its code quoted):
        a TODO, or an INFO where the reason starts with "INFO:" (no effect in 1.x either)."""
        for use in self.leftovers():
            reason = why.get(
                use.attr or "", f"`{use.attr}` has no 2.x equivalent for this component"
            )
            kind: Kind = "TODO"
            if reason.startswith("INFO:"):
                kind, reason = "INFO", reason[len("INFO:") :].strip()
            text = (
                code_of(use.stmt.body[0]) if isinstance(use.stmt, cst.SimpleStatementLine) else ""
            )
            self.ctx.note(use.stmt, kind, f"`{text}`: {reason}; removed")
            self.ctx.remove(use.stmt)
            self.done.add(id(use))


# --------------------------------------------------------------------------------------
# hooks inside the training code


@dataclass
class TrainFn:
    """The user's training function and the functions it calls (followed inside the file)."""

    defs: list[cst.FunctionDef]


def follow_function(ctx: Ctx, name_code: str | None, scope: Scope, depth: int = 3) -> TrainFn:
    defs: list[cst.FunctionDef] = []
    if name_code is None or not name_code.isidentifier():
        return TrainFn(defs)
    name_code = ctx.lambda_calls.get(name_code, name_code)
    first = ctx.a.function_named(name_code, scope)
    todo = [first] if first is not None else []
    while todo and depth >= 0:
        nxt: list[cst.FunctionDef] = []
        for fn in todo:
            if fn in defs:
                continue
            defs.append(fn)
            for call in calls_in(fn):
                if isinstance(call.func, cst.Name):
                    callee = ctx.a.function_named(call.func.value, ctx.a.scope(call))
                    if callee is not None and callee not in defs:
                        nxt.append(callee)
        todo = nxt
        depth -= 1
    return TrainFn(defs)


def calls_in(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(_Calls())
    return found


def inside(ctx: Ctx, node: cst.CSTNode, defs: Iterable[cst.FunctionDef]) -> bool:
    targets = set(map(id, defs))
    return any(id(anc) in targets for anc in ctx.a.ancestors(node))


def hook_calls(comps: Iterable[Component]) -> list[tuple[Component, Use]]:
    """Hook calls on the components and on the parameters they are passed in as."""
    return [
        (m, u)
        for c in comps
        for m in c.family()
        for u in m.uses
        if u.kind == "call" and u.attr in HOOKS
    ]


def optimizer_steps(ctx: Ctx, fn: TrainFn) -> list[cst.SimpleStatementLine]:
    """`optimizer.step()` / `scaler.step(optimizer)` statements in the training functions."""
    found: list[cst.SimpleStatementLine] = []
    for d in fn.defs:
        for call in calls_in(d):
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
                continue
            receiver = code_of(func.value).lower()
            args = " ".join(code_of(x.value).lower() for x in call.args)
            is_optim = ("optim" in receiver or receiver.endswith("opt")) and not call.args
            is_scaler = "scaler" in receiver and "optim" in args
            if not (is_optim or is_scaler) or "sched" in receiver:
                continue
            stmt = ctx.a.statement_of(call)
            if (
                isinstance(stmt, cst.SimpleStatementLine)
                and len(stmt.body) == 1
                and isinstance(stmt.body[0], cst.Expr)
                and stmt.body[0].value is call
                and ctx.a.enclosing_function(stmt) is d
            ):
                found.append(stmt)
    return found


def loader_of(ctx: Ctx, loop: cst.For) -> cst.BaseExpression | None:
    """The dataloader a `for` iterates (a name or attribute; enumerate(...), tqdm(...)
    and iter(...) are peeled), or None when it is something else (a call that would
    run again if counted)."""
    node: cst.BaseExpression = loop.iter
    while isinstance(node, cst.Call) and node.args and node.args[0].keyword is None:
        name = code_of(node.func).rsplit(".", 1)[-1]
        if name not in ("enumerate", "tqdm", "iter", "trange", "progress_bar", "track"):
            break
        node = node.args[0].value
    chain = node
    while isinstance(chain, cst.Attribute):
        chain = chain.value
    return node if isinstance(chain, cst.Name) else None


def step_index(loop: cst.For) -> str | None:
    """The batch counter of `for i, batch in enumerate(loader)`."""
    if isinstance(loop.iter, cst.Call) and code_of(loop.iter.func) == "enumerate":
        target = loop.target
        if (
            isinstance(target, cst.Tuple)
            and target.elements
            and isinstance(target.elements[0].value, cst.Name)
        ):
            return target.elements[0].value.value
    return None
