"""`Ctx`, the state every component planner shares for one file: the analysis, the
statement edits, the pending notes and findings, the names in use, the yaml docs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import GlobalScope, Scope

from neural_coder.transforms.errors import ConfigError

from . import yaml_locate, yaml_map
from .analysis import Analysis, Component
from .codegen import Names, code_of, comment_lines, expression, statements
from .findings import TODO_PREFIX, Kind
from .targets import Symbol, symbol

ANCHOR = "# @@neural-coder-finding:"


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
