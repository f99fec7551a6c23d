"""Find the 1.x API in a module: components, what is done with them, and helpers
that follow names through scopes (which binding a name reads, where a function is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    GlobalScope,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from neural_coder.transforms.tree import Tree

_EXP = "neural_compressor.experimental"

# qualified constructor name -> component kind
COMPONENTS: dict[str, str] = {}
for _kind, _cls, _mods in (
    ("quantization", "Quantization", ("", ".quantization")),
    ("pruning", "Pruning", ("", ".pruning")),
    ("distillation", "Distillation", ("", ".distillation")),
    ("mixed_precision", "MixedPrecision", ("", ".mixed_precision")),
    ("benchmark", "Benchmark", ("", ".benchmark")),
    ("scheduler", "Scheduler", ("", ".scheduler")),
    ("model_conversion", "ModelConversion", ("", ".model_conversion")),
    ("graph_optimization", "GraphOptimization", ("", ".graph_optimization")),
    ("nas", "NAS", ("", ".nas")),
):
    for _mod in _mods:
        COMPONENTS[f"{_EXP}{_mod}.{_cls}"] = _kind
# the 1.0-style classes still shipped in 1.14 (`neural_compressor.Quantization(yaml)(model, ...)`)
for _kind, _cls, _mod in (
    ("quantization", "Quantization", "quantization"),
    ("pruning", "Pruning", "pruning"),
    ("benchmark", "Benchmark", "benchmark"),
):
    COMPONENTS[f"neural_compressor.{_cls}"] = _kind
    COMPONENTS[f"neural_compressor.{_mod}.{_cls}"] = _kind

COMMON: dict[str, str] = {}
for _name, _mods in (
    ("Model", ("", ".model")),
    ("DataLoader", ("", ".dataloader")),
    ("Metric", ("", ".metric")),
    ("Postprocess", ("", ".postprocess")),
    ("Criterions", ("", ".criterion")),
    ("Optimizers", ("", ".optimizer")),
):
    for _mod in _mods:
        COMMON[f"{_EXP}.common{_mod}.{_name}"] = _name
for _name in (
    "PyTorchKnowledgeDistillationLoss",
    "PyTorchIntermediateLayersKnowledgeDistillationLoss",
    "PyTorchSelfKnowledgeDistillationLoss",
):
    COMMON[f"{_EXP}.common.criterion.{_name}"] = _name
    COMMON[f"{_EXP}.common.{_name}"] = _name

LEGACY_PREFIXES = (f"{_EXP}.", "neural_compressor.conf.", "neural_compressor.contrib.")

CONDITIONAL = (
    cst.If,
    cst.Else,
    cst.For,
    cst.While,
    cst.Try,
    cst.TryStar,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.With,
    cst.Match,
)
SCOPE_NODES = (cst.FunctionDef, cst.Module, cst.ClassDef, cst.Lambda)


@dataclass
class Use:
    """One use of a component variable (a Name node that reads it)."""

    kind: str  # set | call | direct | read | arg | escape
    name: cst.Name
    stmt: cst.BaseStatement
    scope: Scope
    attr: str | None = None
    node: cst.CSTNode | None = None  # Assign (set), Call (call/direct/arg), Attribute (read)
    value: cst.BaseExpression | None = None  # for set
    conditional: bool = False
    followed: bool = False  # an argument followed into the called function (see aliases)


@dataclass
class Component:
    name: str
    kind: str
    ctor: cst.Call
    stmt: cst.SimpleStatementLine
    scope: Scope
    uses: list[Use] = field(default_factory=list)
    qualified: str = ""
    # the component passed to a function of this file: that function's parameter
    aliases: list[Component] = field(default_factory=list)
    alias_of: Component | None = None

    def family(self) -> list[Component]:
        """This component and every parameter it is passed in as (recursively)."""
        out = [self]
        for alias in self.aliases:
            out += alias.family()
        return out


class Analysis(Tree, cst.CSTVisitor):
    """One pass over the module with qualified names, scopes, parents and positions
    (`line`, `parent`, `ancestors`, `statement_of`, `enclosing_function` come from `Tree`)."""

    METADATA_DEPENDENCIES = (
        QualifiedNameProvider,
        ScopeProvider,
        ParentNodeProvider,
        PositionProvider,
    )

    def __init__(self, wrapper: MetadataWrapper) -> None:
        super().__init__()
        self.wrapper = wrapper
        self.module = wrapper.module
        self.ctor_calls: list[tuple[cst.Call, str, str]] = []  # (call, kind, qualified name)
        self.common_calls: list[tuple[cst.Call, str]] = []
        self.legacy_refs: list[tuple[cst.CSTNode, str]] = []
        self.imports: list[cst.Import | cst.ImportFrom] = []
        self.names: set[str] = set()
        self._in_import = 0
        wrapper.visit(self)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.scopes = wrapper.resolve(ScopeProvider)
        self.positions = wrapper.resolve(PositionProvider)

    # -- visiting ---------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        self.imports.append(node)
        self._in_import += 1
        for alias in node.names:  # `import a.b` binds a; `import a.b as c` binds c
            self.names.add(alias.evaluated_alias or alias.evaluated_name.split(".")[0])

    def leave_Import(self, original_node: cst.Import) -> None:
        self._in_import -= 1

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.imports.append(node)
        self._in_import += 1
        if not isinstance(node.names, cst.ImportStar):  # the module path binds nothing
            for alias in node.names:
                self.names.add(alias.evaluated_alias or alias.evaluated_name)

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        self._in_import -= 1

    def visit_Name(self, node: cst.Name) -> None:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        is_attr = isinstance(parent, cst.Attribute) and parent.attr is node
        is_keyword = isinstance(parent, cst.Arg) and parent.keyword is node
        if not (is_attr or is_keyword or self._in_import):
            self.names.add(node.value)  # names the file binds or reads (fresh names avoid them)
        if not self._in_import and not is_attr:
            self._legacy_ref(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if not self._in_import:
            self._legacy_ref(node)

    def visit_Call(self, node: cst.Call) -> None:
        for qname in self._qnames(node.func):
            if qname in COMPONENTS:
                self.ctor_calls.append((node, COMPONENTS[qname], qname))
                return
            if qname in COMMON:
                self.common_calls.append((node, COMMON[qname]))
                return

    def _legacy_ref(self, node: cst.Name | cst.Attribute) -> None:
        for qname in self._qnames(node):
            if qname.startswith(LEGACY_PREFIXES):
                self.legacy_refs.append((node, qname))
                return

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        try:
            return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}
        except KeyError:
            return set()

    # -- helpers ------------------------------------------------------------------------
    def pos(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.positions[node].start
        return (start.line, start.column)

    def is_conditional(self, stmt: cst.BaseStatement) -> bool:
        """Is `stmt` under an if/for/while/try/with inside its own scope?"""
        for anc in self.ancestors(stmt):
            if isinstance(anc, SCOPE_NODES):
                return False
            if isinstance(anc, CONDITIONAL):
                return True
        return False

    def scope(self, node: cst.CSTNode) -> Scope:
        scope = self.scopes.get(node)
        if scope is None:
            for anc in self.ancestors(node):
                scope = self.scopes.get(anc)
                if scope is not None:
                    break
        assert scope is not None
        return scope

    def loop_of(
        self, node: cst.CSTNode, stop: cst.CSTNode | None = None
    ) -> cst.For | cst.While | None:
        for anc in self.ancestors(node):
            if anc is stop or isinstance(anc, SCOPE_NODES):
                return None
            if isinstance(anc, cst.For | cst.While):
                return anc
        return None

    def binds(self, name: str, scope: Scope) -> bool:
        """Does `scope` itself assign `name` (not a parent scope)?"""
        return any(a.scope is scope for a in scope.assignments[name])

    def same_binding(self, name: str, a: Scope, b: Scope) -> bool:
        """Does `name` read the same assignments from scopes a and b? (Unassigned in
        both: the same module global or builtin.)"""
        return set(a[name]) == set(b[name])

    def visible(self, name: str, from_scope: Scope, binding_scope: Scope) -> bool:
        """Would a new binding of `name` in `binding_scope` be read from `from_scope`?"""
        scope: Scope | None = from_scope
        while scope is not None:
            if scope is binding_scope:
                return True
            if scope.assignments[name] and scope is not binding_scope:
                return False
            if isinstance(scope, GlobalScope):
                return False
            parent = scope.parent
            # class bodies are not visible from the methods inside them
            scope = parent
        return False

    def function_named(self, name: str, scope: Scope) -> cst.FunctionDef | None:
        """The `def` a name refers to from `scope`, when exactly one."""
        defs = [
            a.node for a in scope[name] if isinstance(getattr(a, "node", None), cst.FunctionDef)
        ]
        return defs[0] if len(defs) == 1 and len(set(scope[name])) == 1 else None

    def names_in(self, node: cst.CSTNode) -> set[str]:
        found: set[str] = set()

        class _Names(cst.CSTVisitor):
            def visit_Name(self, n: cst.Name) -> None:
                found.add(n.value)

            def visit_Attribute(self, n: cst.Attribute) -> bool:
                n.value.visit(self)
                return False

        node.visit(_Names())
        return found

    # -- components -------------------------------------------------------------------
    def components(self) -> tuple[list[Component], list[tuple[cst.Call, str, str]]]:
        """Components bound to a variable, and constructor calls that are not."""
        found: list[Component] = []
        orphans: list[tuple[cst.Call, str, str]] = []
        for call, kind, qname in self.ctor_calls:
            assign = self.parent(call)
            stmt = self.parent(assign) if assign is not None else None
            if (
                isinstance(assign, cst.Assign)
                and assign.value is call
                and len(assign.targets) == 1
                and isinstance(assign.targets[0].target, cst.Name)
                and isinstance(stmt, cst.SimpleStatementLine)
                and len(stmt.body) == 1
            ):
                target = assign.targets[0].target
                comp = Component(target.value, kind, call, stmt, self.scope(stmt), qualified=qname)
                comp.uses = self.uses_of(target, comp)
                found.append(comp)
            else:
                orphans.append((call, kind, qname))
        return found, orphans

    def follow_arguments(self, comp: Component, depth: int = 2) -> None:
        """`train(model, loader, prune)` with `def train(model, loader, agent)` in this file:
        `agent` inside `train` is the component too (an alias)."""
        if depth < 0:
            return
        for use in comp.uses:
            if use.kind != "arg" or not isinstance(use.node, cst.Call):
                continue
            call = use.node
            if not isinstance(call.func, cst.Name):
                continue
            fn = self.function_named(call.func.value, self.scope(call))
            if fn is None:
                continue
            param = self._parameter_for(fn, call, use.name)
            if param is None:
                continue
            scope = self.scopes.get(fn.body)
            if scope is None:
                continue
            alias = Component(
                param.name.value,
                comp.kind,
                comp.ctor,
                comp.stmt,
                scope,
                qualified=comp.qualified,
                alias_of=comp,
            )
            alias.uses = self.uses_of(param, alias)
            use.followed = True
            comp.aliases.append(alias)
            self.follow_arguments(alias, depth - 1)

    def _parameter_for(
        self, fn: cst.FunctionDef, call: cst.Call, name: cst.Name
    ) -> cst.Param | None:
        positional = [p for p in (*fn.params.posonly_params, *fn.params.params)]
        for i, arg in enumerate(call.args):
            if arg.value is not name:
                continue
            if arg.star:
                return None
            if arg.keyword is not None:
                return next(
                    (
                        p
                        for p in (*positional, *fn.params.kwonly_params)
                        if p.name.value == arg.keyword.value
                    ),
                    None,
                )
            return positional[i] if i < len(positional) else None
        return None

    def uses_of(self, target: cst.Name | cst.Param, comp: Component) -> list[Use]:
        scope = comp.scope
        uses: list[Use] = []
        seen: set[int] = set()
        name = target.name.value if isinstance(target, cst.Param) else target.value
        start, end = self._own_reads(target, name, scope)
        for assignment in scope.assignments[name]:
            if getattr(assignment, "node", None) is not target:
                continue
            for access in assignment.references:
                node = access.node
                if not isinstance(node, cst.Name) or id(node) in seen:
                    continue
                if (start is not None and self.pos(node) < start) or (
                    end is not None and self.pos(node) > end
                ):
                    continue  # another binding of the name, in the same block, is read there
                seen.add(id(node))
                uses.append(self.classify(node))
        uses.sort(key=lambda u: self.pos(u.name))
        return uses

    def _own_reads(
        self, target: cst.Name | cst.Param, name: str, scope: Scope
    ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """Where reads of this binding of `name` can be, when other assignments of it
        stand in the same block (straight-line code: `quantizer = Quantization(a)` ...
        `quantizer = Quantization(b)`): from `target` when an earlier one exists, up to
        the next one. libcst's references ignore order, so a read after the next
        assignment would otherwise count for both. None: no bound on that side."""
        if isinstance(target, cst.Param):
            return None, None
        block = self.parent(self.statement_of(target))
        here = self.pos(target)
        later: list[tuple[int, int]] = []
        earlier = False
        for assignment in scope.assignments[name]:
            node = getattr(assignment, "node", None)
            if node is None or node is target or not isinstance(node, cst.CSTNode):
                continue
            if self.parent(self.statement_of(node)) is not block:
                continue
            if self.pos(node) > here:
                later.append(self.pos(node))
            else:
                earlier = True
        return (here if earlier else None), (min(later) if later else None)

    def classify(self, name: cst.Name) -> Use:
        stmt = self.statement_of(name)
        scope = self.scope(name)
        parent = self.parent(name)
        if isinstance(parent, cst.Attribute) and parent.value is name:
            attr = parent.attr.value
            grand = self.parent(parent)
            if isinstance(grand, cst.AssignTarget) and grand.target is parent:
                assign = self.parent(grand)
                if (
                    isinstance(assign, cst.Assign)
                    and len(assign.targets) == 1
                    and isinstance(stmt, cst.SimpleStatementLine)
                    and len(stmt.body) == 1
                ):
                    return Use(
                        "set",
                        name,
                        stmt,
                        scope,
                        attr,
                        assign,
                        assign.value,
                        self.is_conditional(stmt),
                    )
                return Use("escape", name, stmt, scope, attr)
            if isinstance(grand, cst.Call) and grand.func is parent:
                return Use("call", name, stmt, scope, attr, grand)
            return Use("read", name, stmt, scope, attr, parent)
        if isinstance(parent, cst.Call) and parent.func is name:
            return Use("direct", name, stmt, scope, None, parent)
        if isinstance(parent, cst.Arg):
            call = self.parent(parent)
            if isinstance(call, cst.Call):
                return Use("arg", name, stmt, scope, None, call)
        return Use("escape", name, stmt, scope)


def legacy_uses(module: cst.Module) -> list[tuple[cst.CSTNode, str, tuple[int, int, int, int]]]:
    """Each statement-level use of the 1.x API, in file order: (node, what, (line, column,
    end line, end column)) — imports of its modules, its components and its common classes."""
    analysis = Analysis(MetadataWrapper(module, unsafe_skip_copy=True))
    found: list[tuple[cst.CSTNode, str]] = []
    for node in analysis.imports:
        if isinstance(node, cst.ImportFrom) and node.module is not None:
            name = get_full_name_for_node(node.module) or ""
            if name == _EXP or name.startswith(_EXP + "."):
                found.append((node, f"import from {name}"))
        elif isinstance(node, cst.Import):
            for alias in node.names:
                if alias.evaluated_name.startswith(_EXP):
                    found.append((node, f"import {alias.evaluated_name}"))
                    break
    found += [(call, qname) for call, _, qname in analysis.ctor_calls]
    found += [(call, f"{_EXP}.common.{name}") for call, name in analysis.common_calls]
    out = []
    for node, what in found:
        where = analysis.positions[node]
        span = (where.start.line, where.start.column, where.end.line, where.end.column)
        out.append((node, what, span))
    out.sort(key=lambda item: item[2])
    return out
