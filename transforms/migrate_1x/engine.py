"""`migrate_source`: one file from the 1.x API to the 2.x API.

The analysis finds the 1.x components, the planners of each component kind ask for
edits, one transformer applies them, then the 2.x imports are added once
(`transforms/imports.py`, in libcst's layout) and the 1.x imports nothing uses any more
are dropped (`transforms/unused_imports.py`): what libcst's codemod command with its
`AddImportsVisitor` / `RemoveImportsVisitor` did, without importing `libcst.codemod`
and `libcst.matchers` (tests/coder/test_startup.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import libcst as cst
from libcst.metadata import GlobalScope, MetadataWrapper

from neural_coder.transforms.errors import MigrationError, ParseError
from neural_coder.transforms.imports import ImportRequest, add_imports
from neural_coder.transforms.tree import parse_python
from neural_coder.transforms.unused_imports import Removal, remove_unused_imports

from . import (
    benchmark,
    common,
    distillation,
    mixed_precision,
    model_conversion,
    pruning,
    quantization,
    scheduler,
)
from .analysis import Analysis, Component
from .apply_edits import _Apply, _place_findings, _Redirect
from .codegen import code_of
from .context import Ctx
from .findings import TODO_PREFIX, MigrationResult
from .manager import fit_uses
from .reads import covered, settle_reads
from .targets import RUNTIME_REDIRECTS, TARGETS, symbol
from .yaml_map import dotted, short

PLANNERS = {
    "quantization": quantization.plan,
    "pruning": pruning.plan,
    "distillation": distillation.plan,
    "mixed_precision": mixed_precision.plan,
    "benchmark": benchmark.plan,
}
UNSUPPORTED = ("model_conversion", "graph_optimization", "nas")
# 1.0-style names imported from the package root or their modules
_V1_NAMES = {("neural_compressor", n) for n in ("Quantization", "Pruning", "Benchmark", "conf")} | {
    ("neural_compressor.quantization", "Quantization"),
    ("neural_compressor.pruning", "Pruning"),
    ("neural_compressor.benchmark", "Benchmark"),
}


def migrate_source(
    source: str, path: Path, target: str = "inc", line_length: int | None = None
) -> MigrationResult:
    """Rewrite the 1.x API in `source` (the file at `path`) to the 2.x API.

    `target`: "inc" (imports neural_compressor 2.x) or "runtime" (imports
    neural_coder.runtime). Raises ParseError (not Python), ConfigError (a yaml is
    missing, invalid or unsafe) or MigrationError (bad target).
    """
    if target not in TARGETS:
        raise MigrationError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    path = Path(path)
    if "neural_compressor" not in source:
        return MigrationResult(source, False, [])
    try:
        module = parse_python(source)
    except cst.ParserSyntaxError as exc:
        raise ParseError(
            f"not valid Python: {exc.message}", path=path, line=exc.raw_line, column=exc.raw_column
        ) from None
    migration = _Migration(path, target, line_length or _line_length(source))
    new = migration.transform(MetadataWrapper(module))  # (a copy of the tree, as libcst's codemod)
    code, findings = _place_findings(new.code, migration.ctx, str(path))
    try:
        cst.parse_module(code)
    except cst.ParserSyntaxError as exc:  # pragma: no cover - a bug of ours, never the user's
        raise MigrationError(
            f"the migrated code does not parse ({exc.message}); please report this", path=path
        ) from None
    return MigrationResult(
        code, code != source, findings, migrated=_without_todos(code) != _without_todos(source)
    )


def _without_todos(code: str) -> list[str]:
    return [line for line in code.splitlines() if not line.lstrip().startswith(TODO_PREFIX.strip())]


def _line_length(source: str) -> int:
    longest = max((len(line) for line in source.splitlines()), default=0)
    return max(88, min(longest, 120))


class _Migration:
    """One file's migration: `transform` plans and applies the edits, then adds the imports
    they need and drops the 1.x imports left unused."""

    def __init__(self, path: Path, target: str, line_length: int) -> None:
        self.path = path
        self.target = target
        self.line_length = line_length
        self.ctx: Ctx | None = None
        self.imports: list[ImportRequest] = []
        self.removals: list[Removal] = []

    def transform(self, wrapper: MetadataWrapper) -> cst.Module:
        new = self._edit(wrapper)
        if self.imports:
            new = add_imports(new, self.imports, as_libcst=True)
        if self.removals:
            new = remove_unused_imports(new, self.removals)
        return new

    def _edit(self, wrapper: MetadataWrapper) -> cst.Module:
        tree = wrapper.module
        analysis = Analysis(wrapper)
        if not (
            analysis.ctor_calls
            or analysis.common_calls
            or analysis.legacy_refs
            or _legacy_star_imports(analysis)
        ):
            return tree
        # A component whose variable is still read where 2.x has no counterpart
        # (`quantizer.model` after fit) cannot lose its variable: plan again, leaving it as 1.x.
        leave: dict[int, str] = {}
        while True:
            ctx = Ctx(analysis, self.path, self.target, self.line_length)
            ctx.common_code = functools.partial(_common_code, ctx)
            dangling = _plan(ctx, leave)
            if dangling.keys() <= leave.keys():  # what cannot be left fails verification
                break
            leave |= dangling
        self.ctx = ctx
        new = tree.visit(_Apply(ctx))
        for name, local in ctx.symbols.items():
            sym = symbol(name, self.target)
            if sym.name is None:
                self.imports.append((sym.module, None, None if local == sym.module else local))
            else:
                self.imports.append((sym.module, sym.name, None if local == sym.name else local))
        for imp in analysis.imports:
            self._drop_legacy_import(imp)
        if self.target == "runtime":
            new = new.visit(_Redirect(ctx))
        return new

    def _drop_legacy_import(self, imp: cst.Import | cst.ImportFrom) -> None:
        if isinstance(imp, cst.ImportFrom):
            if imp.relative or imp.module is None or isinstance(imp.names, cst.ImportStar):
                return
            module = code_of(imp.module)
            for alias in imp.names:
                name = alias.evaluated_name
                if (
                    _is_legacy(module)
                    or _is_legacy(f"{module}.{name}")
                    or (module, name) in _V1_NAMES
                ):
                    self.removals.append((module, name, alias.evaluated_alias))
        else:
            for alias in imp.names:
                name = alias.evaluated_name
                if _is_legacy(name) or name == "neural_compressor":
                    # `import neural_compressor` only served `neural_compressor.Quantization`
                    # (1.0 style); it goes when nothing uses it any more
                    self.removals.append((name, None, alias.evaluated_alias))


def _is_legacy(module: str) -> bool:
    return module == "neural_compressor.experimental" or module.startswith(
        ("neural_compressor.experimental.", "neural_compressor.conf")
    )


# --------------------------------------------------------------------------------------


def _common_code(ctx: Ctx, call: cst.Call) -> str:
    return common.convert(ctx, call).code


def _plan(ctx: Ctx, leave: Mapping[int, str]) -> dict[int, str]:
    """Plan every edit; returns the components still read where their variable would be
    gone ({id of the constructor: the read}), which a new plan must `leave` as 1.x code.

    Components are told apart by their constructor, not their name: two functions
    may each build a `quantizer`. A scheduler finds its members among the components
    its own scope sees."""
    a = ctx.a
    comps, orphans = a.components()
    for comp in comps:
        a.follow_arguments(comp)
    combos: dict[int, Component] = {}
    for sched in (c for c in comps if c.kind == "scheduler"):
        for use in sched.uses:
            if use.kind == "call" and use.attr == "combine":
                combo = _combination_component(ctx, use)
                if combo is not None:
                    combos[id(combo.ctor)] = combo
    consumed: set[int] = set()  # ids of constructors a scheduler plans
    skipped: set[int] = set()  # left as 1.x code, with a TODO
    for comp in comps:
        why = ctx.yaml_unreadable(comp)
        if why is not None:  # a Conf object, a computed path: leave this component as it is
            ctx.note(
                comp.stmt,
                "TODO",
                f"`{comp.name}` is built from `{why}`, which this tool cannot read (it reads a yaml path written as a string, a name bound to one, or an argparse default); left as 1.x code",
            )
        elif id(comp.ctor) in leave:
            ctx.note(
                comp.stmt,
                "TODO",
                f"{leave[id(comp.ctor)]} is 1.x API with no 2.x counterpart, and the 2.x code has no "
                f"`{comp.name}` to read it from, so `{comp.name}` was left as 1.x code; migrate it by hand",
            )
        else:
            continue
        ctx.handled.add(id(comp.ctor))
        skipped.add(id(comp.ctor))
    planned: list[Component] = []
    for sched in (c for c in comps if c.kind == "scheduler"):
        visible = _visible_from(sched, [*comps, *combos.values()])
        members = _members(sched, visible)
        if {id(c.ctor) for c in members} & skipped:
            ctx.note(
                sched.stmt,
                "TODO",
                f"`{sched.name}` runs a component left as 1.x code; the scheduler is left as it is",
            )
            skipped |= {id(sched.ctor), *(id(c.ctor) for c in members)}
            continue
        done = scheduler.plan(ctx, sched, visible, combos)
        if done is not None:
            planned += [visible[name] for name in done]
            consumed |= {id(visible[name].ctor) for name in done}
        else:  # left as it is, with its TODO
            skipped |= {id(sched.ctor), *(id(c.ctor) for c in members)}
    for comp in comps:
        if id(comp.ctor) in consumed | skipped or comp.kind == "scheduler":
            continue
        if comp.kind in UNSUPPORTED:
            model_conversion.plan(ctx, comp)
            skipped.add(id(comp.ctor))
            continue
        fits = fit_uses(comp)
        if len(fits) != 1:
            what = "no fit() call" if not fits else f"{len(fits)} fit() calls"
            ctx.note(
                comp.stmt,
                "TODO",
                f"`{comp.name}` ({comp.kind}): {what} found, so it was left as 1.x code; migrate it by hand",
            )
            ctx.handled.add(id(comp.ctor))
            skipped.add(id(comp.ctor))
            continue
        PLANNERS[comp.kind](ctx, comp, fits[0])
        planned.append(comp)
    for call, kind, _qname in orphans:
        stmt = a.statement_of(call)
        ctx.note(
            stmt,
            "TODO",
            f"`{code_of(call)}`: a 1.x {kind} component not assigned to a variable; migrate it by hand",
            call,
        )
        ctx.handled.add(id(call))
    for comp in (c for c in [*comps, *combos.values()] if id(c.ctor) in skipped):
        ctx.frozen |= {id(u.stmt) for member in comp.family() for u in member.uses} | {
            id(comp.stmt)
        }
    common.plan_standalone(ctx)
    settle_reads(ctx, planned)
    dangling = _uncovered_uses(ctx, planned)
    _report_legacy_refs(ctx)
    _report_star_imports(ctx)
    _report_yaml_leftovers(ctx)
    if ctx.target == "runtime":
        _report_imports_without_runtime(ctx)
    return dangling


def _visible_from(sched: Component, comps: Sequence[Component]) -> dict[str, Component]:
    """Components by name as the scheduler's scope sees them: its own scope's first,
    then the module's."""
    visible: dict[str, Component] = {}
    for comp in comps:
        if comp.scope is sched.scope or (
            isinstance(comp.scope, GlobalScope) and comp.name not in visible
        ):
            visible[comp.name] = comp
    return visible


def _members(sched: Component, visible: Mapping[str, Component]) -> list[Component]:
    """The components the scheduler appends or combines."""
    members: list[Component] = []
    for use in sched.uses:
        if (
            use.kind == "call"
            and use.attr in ("append", "combine")
            and isinstance(use.node, cst.Call)
        ):
            members += [
                visible[arg.value.value]
                for arg in use.node.args
                if isinstance(arg.value, cst.Name) and arg.value.value in visible
            ]
    return members


def _combination_component(ctx: Ctx, use: object) -> Component | None:
    a = ctx.a
    call = use.node  # type: ignore[attr-defined]
    assign = a.parent(call)
    stmt = a.parent(assign) if assign is not None else None
    if not (
        isinstance(assign, cst.Assign)
        and assign.value is call
        and len(assign.targets) == 1
        and isinstance(assign.targets[0].target, cst.Name)
        and isinstance(stmt, cst.SimpleStatementLine)
    ):
        return None
    target = assign.targets[0].target
    comp = Component(target.value, "combination", call, stmt, a.scope(stmt))
    comp.uses = a.uses_of(target, comp)
    a.follow_arguments(comp)
    return comp


def _uncovered_uses(ctx: Ctx, planned: Sequence[Component]) -> dict[int, str]:
    """{id of the constructor: "`name.attr`"}: the first read of each planned component
    that no edit rewrites, and so would be left reading a variable the 2.x code no
    longer has."""
    found: dict[int, str] = {}
    for top in planned:
        for comp in top.family():
            for use in comp.uses:
                if use.kind == "set" or use.followed or id(top.ctor) in found:
                    continue
                if covered(ctx, use.name, use.stmt) or (
                    use.node is not None and covered(ctx, use.node, use.stmt)
                ):
                    continue
                if use.node is not None and use.node in ctx.expr_edits:
                    continue
                what = f"{comp.name}.{use.attr}" if use.attr else comp.name
                found[id(top.ctor)] = f"`{what}`"
    return found


def _report_legacy_refs(ctx: Ctx) -> None:
    noted: set[int] = set()
    for node, qname in ctx.a.legacy_refs:
        stmt = ctx.a.statement_of(node)
        if id(stmt) in noted or covered(ctx, node, stmt):
            continue
        edit = ctx.stmt_edits.get(stmt)
        if (edit is not None and edit.notes) or any(
            c.startswith(TODO_PREFIX) for c in ctx.comments_above(stmt)
        ):
            continue  # already explained (now, or by a previous run)
        noted.add(id(stmt))
        ctx.note(
            stmt,
            "TODO",
            f"`{qname}` is 1.x API this tool cannot rewrite here; rewrite it by hand",
            node,
        )


def _legacy_star_imports(a: Analysis) -> list[cst.ImportFrom]:
    return [
        imp
        for imp in a.imports
        if isinstance(imp, cst.ImportFrom)
        and isinstance(imp.names, cst.ImportStar)
        and imp.module is not None
        and not imp.relative
        and _is_legacy(code_of(imp.module))
    ]


def _report_star_imports(ctx: Ctx) -> None:
    """`from neural_compressor.experimental import *` hides which names are 1.x API."""
    for imp in _legacy_star_imports(ctx.a):
        module = code_of(imp.module)  # type: ignore[arg-type]
        ctx.note(
            ctx.a.statement_of(imp),
            "TODO",
            f"`from {module} import *` hides which 1.x names the script uses, so they were not migrated; import them by name (`from {module} import Quantization, common`) and run again",
        )


def _report_imports_without_runtime(ctx: Ctx) -> None:
    """--target runtime: a 2.x `neural_compressor` import the runtime has no stand-in for
    keeps the script tied to Intel Neural Compressor (1.x imports go or have their TODO)."""
    for imp in ctx.a.imports:
        stmt = ctx.a.statement_of(imp)
        if isinstance(imp, cst.ImportFrom):
            if imp.module is None or isinstance(imp.names, cst.ImportStar):
                continue
            module = code_of(imp.module)
            names = [(module, alias.evaluated_name) for alias in imp.names]
        else:
            names = [(alias.evaluated_name, "") for alias in imp.names]
        for module, name in names:
            if not (module == "neural_compressor" or module.startswith("neural_compressor.")):
                continue
            if _is_legacy(module) or _is_legacy(f"{module}.{name}") or (module, name) in _V1_NAMES:
                continue
            if module == "neural_compressor" and not name:
                continue  # `import neural_compressor`: dropped when unused, else its uses say why
            if (module, name) not in RUNTIME_REDIRECTS:
                ctx.note(
                    stmt,
                    "TODO",
                    f"`{module}{'.' + name if name else ''}` has no counterpart in neural_coder.runtime; with --target runtime this import still needs Intel Neural Compressor",
                )


def _report_yaml_leftovers(ctx: Ctx) -> None:
    for path, doc in ctx.yaml_docs.items():
        users = ctx.yaml_users.get(path, [])
        if not users:
            continue
        names = ", ".join(sorted({n for n, _s in users}))
        stmt = users[0][1]
        for keys, value in doc.unconsumed():
            if keys == ("version",) or keys[:1] == ("model",):
                continue
            ctx.note(
                stmt,
                "INFO",
                f"{doc.name}:{doc.line(keys)}: `{dotted(keys)}: {short(value)}` is not carried over: the 2.x code of {names} has no use for it",
            )
