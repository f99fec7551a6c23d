"""The shared machinery of the component planners: edits, notes, names, attributes,
and the 2.x training block (`prepare_compression` + callbacks around the training).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import GlobalScope, Scope

from neural_coder.transforms.errors import ConfigError

from . import yaml_locate, yaml_map
from .analysis import CONDITIONAL, Analysis, Component, Use
from .codegen import Names, code_of, comment_lines, expression, statements
from .findings import TODO_PREFIX, Kind
from .targets import Symbol, symbol

ANCHOR = "# @@neural-coder-finding:"

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


@dataclass
class StmtEdit:
    before: list[cst.BaseStatement] = field(default_factory=list)
    after: list[cst.BaseStatement] = field(default_factory=list)
    replace: list[cst.BaseStatement] | None = None
    notes: list[cst.EmptyLine] = field(default_factory=list)


@dataclass
class Pending:
    anchor: int
    kind: Kind
    message: str
    source_line: int | None


class Ctx:
    """Everything a planner needs: the analysis, the edits it asks for, notes, imports."""

    def __init__(self, analysis: Analysis, path: Path, target: str, line_length: int) -> None:
        self.a = analysis
        self.path = path
        self.target = target
        self.line_length = line_length
        self.names = Names(analysis.names)
        self.stmt_edits: dict[cst.CSTNode, StmtEdit] = {}
        self.expr_edits: dict[cst.CSTNode, Callable[[cst.CSTNode], cst.CSTNode]] = {}
        self.pending: list[Pending] = []
        self.symbols: dict[str, str] = {}  # 2.x symbol -> local name
        self.handled: set[int] = set()  # ids of 1.x nodes a plan took care of
        self.yaml_docs: dict[Path, yaml_map.YamlDoc] = {}
        self.yaml_users: dict[Path, list[tuple[str, cst.BaseStatement]]] = {}
        self._anchors = itertools.count(1)
        self._noted: set[tuple[cst.CSTNode, str]] = set()
        self.generated: set[str] = set()  # functions the migration writes (1.x built-in loops)
        # `train_func = lambda m: train(m, loader, prune)` held in a variable: the function it calls
        self.lambda_calls: dict[str, str] = {}
        self.frozen: set[int] = set()  # ids of statements of components left as 1.x code
        # the 2.x code of a `common.*` call, or None (set by the engine; see common.convert)
        self.common_code: Callable[[cst.Call], str | None] = lambda _call: None

    # -- notes ---------------------------------------------------------------------------
    def note_lines(self, kind: Kind, message: str, source_line: int | None) -> list[cst.EmptyLine]:
        anchor = next(self._anchors)
        self.pending.append(Pending(anchor, kind, message, source_line))
        texts = [f"{ANCHOR}{anchor}"]
        if kind == "TODO":
            texts.append(TODO_PREFIX + message)
        return comment_lines(texts)

    def note(
        self, stmt: cst.BaseStatement, kind: Kind, message: str, source: cst.CSTNode | None = None
    ) -> None:
        """A finding attached to an original statement (TODO: a comment above it)."""
        line = self.a.line(source if source is not None else stmt)
        if self._has_todo(stmt, message) or (stmt, message) in self._noted:
            return  # said already (by this run, or as a TODO comment by a previous one)
        self._noted.add((stmt, message))
        self.edit(stmt).notes += self.note_lines(kind, message, line)

    def _has_todo(self, stmt: cst.BaseStatement, message: str) -> bool:
        return TODO_PREFIX + message in self.comments_above(stmt)

    def comments_above(self, stmt: cst.BaseStatement) -> list[str]:
        """The comments on the lines above `stmt` (libcst keeps those above the module's
        first statement in the module header)."""
        lines = list(stmt.leading_lines)
        if self.a.module.body and stmt is self.a.module.body[0]:
            lines = [*self.a.module.header, *lines]
        return [line.comment.value for line in lines if line.comment is not None]

    # -- edits ---------------------------------------------------------------------------
    def edit(self, stmt: cst.CSTNode) -> StmtEdit:
        return self.stmt_edits.setdefault(stmt, StmtEdit())

    def remove(self, stmt: cst.BaseStatement) -> None:
        edit = self.edit(stmt)
        if edit.replace is None:
            edit.replace = []

    def replace(self, stmt: cst.BaseStatement, new: Sequence[cst.BaseStatement]) -> None:
        edit = self.edit(stmt)
        edit.replace = [*(edit.replace or []), *new]

    def before(self, stmt: cst.BaseStatement, new: Sequence[cst.BaseStatement]) -> None:
        self.edit(stmt).before.extend(new)

    def after(self, stmt: cst.BaseStatement, new: Sequence[cst.BaseStatement]) -> None:
        self.edit(stmt).after.extend(new)

    def replace_expr(self, node: cst.CSTNode, fn: Callable[[cst.CSTNode], cst.CSTNode]) -> None:
        self.expr_edits[node] = fn

    def replace_with_code(self, node: cst.CSTNode, code: str, at: cst.BaseStatement) -> None:
        new = expression(code, self.width(at))
        self.expr_edits[node] = lambda _updated: new

    def width(self, stmt: cst.CSTNode) -> int:
        return self.line_length - self.a.positions[stmt].start.column

    def gen(
        self,
        lines: Iterable[str],
        at: cst.BaseStatement,
        notes: Iterable[tuple[Kind, str, int | None]] = (),
    ) -> list[cst.BaseStatement]:
        """Generated statements (black-formatted at `at`'s indentation), notes above the first."""
        code = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        stmts = statements(code, self.width(at)) if code.strip() else []
        note_lines = [line for kind, msg, src in notes for line in self.note_lines(kind, msg, src)]
        if note_lines:
            if not stmts:
                stmts = statements("pass\n", self.width(at))
            first = stmts[0]
            stmts[0] = first.with_changes(leading_lines=[*note_lines, *first.leading_lines])
        return stmts

    def sym(self, name: str) -> str:
        """The local name of a 2.x symbol (recorded for import)."""
        if name not in self.symbols:
            sym = symbol(name, self.target)
            local = sym.name or sym.module
            if local in self.a.names and not self._imported_as(sym, local):
                local = self.names.fresh(f"nc_{local}")
            self.symbols[name] = local
        return self.symbols[name]

    def _imported_as(self, sym: Symbol, local: str) -> bool:
        """Does the file already bind `local` by importing exactly `sym`?"""
        for imp in self.a.imports:
            if isinstance(imp, cst.Import) and sym.name is None:
                for alias in imp.names:
                    if (
                        alias.evaluated_name == sym.module
                        and (alias.evaluated_alias or alias.evaluated_name) == local
                    ):
                        return True
            elif isinstance(imp, cst.ImportFrom) and not isinstance(imp.names, cst.ImportStar):
                module = code_of(imp.module) if imp.module else ""
                for alias in imp.names:
                    bound = alias.evaluated_alias or alias.evaluated_name
                    if bound == local and module == sym.module and alias.evaluated_name == sym.name:
                        return True
        return False

    # -- yaml ----------------------------------------------------------------------------
    def yaml_for(self, comp: Component) -> yaml_map.YamlDoc | None:
        """The component's conf.yaml (loaded once), or None when it takes no yaml."""
        arg = comp.ctor.args[0].value if comp.ctor.args else None
        if arg is None:
            return None
        path = self.yaml_path(arg, comp)
        if path is None:
            return None
        if path not in self.yaml_docs:
            self.yaml_docs[path] = yaml_map.load(path)
        self.yaml_users.setdefault(path, []).append((comp.name, comp.stmt))
        return self.yaml_docs[path]

    def yaml_path(self, node: cst.BaseExpression, comp: Component) -> Path | None:
        text = self.yaml_text(node, comp)
        if text is None:
            raise ConfigError(
                f"`{code_of(node)}` (the yaml of `{comp.name}`) is not a string this tool can read",
                path=self.path,
                line=self.a.line(comp.stmt),
                hint="write the yaml path as a string literal (or an argparse default) so the migration can read it",
            )
        path = yaml_locate.resolve(self.path, text)
        if path is None:
            tried = " nor ".join(str(p) for p in yaml_locate.candidates(self.path, text))
            raise ConfigError(
                f"`{comp.name}` reads {text}, and neither {tried} exists",
                path=self.path,
                line=self.a.line(comp.stmt),
                hint="a relative yaml path is looked for in the script's folder and in the "
                "working directory; run from the folder that holds it, or correct the path",
            )
        return path

    def yaml_text(self, node: cst.BaseExpression, comp: Component) -> str | None:
        """The yaml path `node` names; for a command-line value without a default
        (`args.config`), the one yaml next to the script with the component's section."""
        text = self.literal_string(node, comp.scope)
        if text is not None or not (
            isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name)
        ):
            return text
        only = yaml_locate.only_yaml_for(self.path, comp.kind)
        if only is None:
            return None
        self.note(
            comp.stmt,
            "TODO",
            f"`{code_of(node)}` has no default here; migrated from {only.name}, the only "
            f"{comp.kind} yaml next to the script (the 2.x code reads no yaml: its settings are now in code)",
        )
        return str(only)

    def yaml_unreadable(self, comp: Component) -> str | None:
        """Why the component's yaml argument cannot be read statically (None: it can)."""
        arg = comp.ctor.args[0].value if comp.ctor.args else None
        if arg is None or self.yaml_text(arg, comp) is not None:
            return None
        return code_of(arg)

    def literal_string(self, node: cst.BaseExpression, scope: Scope) -> str | None:
        """A string literal, a name bound once to one, `args.x` with an argparse default,
        or a path joined onto the script's folder (`os.path.join(os.path.dirname(__file__),
        "conf.yaml")`, `Path(__file__).parent / "conf.yaml"`)."""
        if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
            value = node.evaluated_value
            return value if isinstance(value, str) else None
        if isinstance(node, cst.Call) and code_of(node.func) in (
            "os.path.join",
            "path.join",
            "join",
        ):
            parts = [self._path_part(x.value, scope) for x in node.args if x.keyword is None]
            if parts and all(p is not None for p in parts):
                return str(Path(*parts))  # type: ignore[arg-type]
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            left, right = self._path_part(node.left, scope), self._path_part(node.right, scope)
            if left is not None and right is not None:
                return str(Path(left) / right)
        if isinstance(node, cst.Name):
            value = self._bound_value(node, scope)
            if value is not None:
                return self.literal_string(value, scope)
        if isinstance(node, cst.Attribute):
            return self._argparse_default(node.attr.value)
        return None

    def _bound_value(self, name: cst.Name, scope: Scope) -> cst.BaseExpression | None:
        """The value of `name = value` when that is the name's only binding."""
        assignments = list(scope[name.value])
        if len(assignments) != 1:
            return None
        target = getattr(assignments[0], "node", None)
        assign = self.a.parent(target) if target is not None else None
        assign = self.a.parent(assign) if isinstance(assign, cst.AssignTarget) else None
        return assign.value if isinstance(assign, cst.Assign) else None

    def _path_part(self, node: cst.BaseExpression, scope: Scope) -> str | None:
        """A piece of a path: a string, or the script's own folder (maybe via a name)."""
        if isinstance(node, cst.Name):
            value = self._bound_value(node, scope)
            if value is not None:
                return self._path_part(value, scope)
        code = code_of(node).replace(" ", "")
        if "__file__" in code and (
            code.startswith(("os.path.dirname(", "path.dirname(", "dirname("))
            or code.endswith(".parent")
        ):
            return str(self.path.parent)
        return self.literal_string(node, scope)

    def _argparse_default(self, dest: str) -> str | None:
        found: list[str] = []
        a = self.a

        class _Args(cst.CSTVisitor):
            def visit_Call(self, call: cst.Call) -> None:
                func = call.func
                if not (isinstance(func, cst.Attribute) and func.attr.value == "add_argument"):
                    return
                flags = [
                    x.value.evaluated_value
                    for x in call.args
                    if x.keyword is None and isinstance(x.value, cst.SimpleString)
                ]
                names = [f.lstrip("-").replace("-", "_") for f in flags if isinstance(f, str)]
                kw = {x.keyword.value: x.value for x in call.args if x.keyword is not None}
                if "dest" in kw and isinstance(kw["dest"], cst.SimpleString):
                    names = [kw["dest"].evaluated_value]
                if dest in names and isinstance(kw.get("default"), cst.SimpleString):
                    found.append(kw["default"].evaluated_value)

        a.module.visit(_Args())
        return found[0] if len(set(found)) == 1 else None

    # -- naming ----------------------------------------------------------------------------
    def is_global(self, scope: Scope) -> bool:
        return isinstance(scope, GlobalScope)


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
