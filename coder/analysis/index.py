"""An index of one file: functions, classes, calls, assignments and imports.

Analysis follows names through it: a name to the values assigned to it, a
parameter to the arguments of the calls that reach the function, `self.x` to
every assignment of `self.x` in the class, a factory call to what the factory
returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterator
from dataclasses import dataclass, field

import libcst as cst

from neural_coder.transforms import match as m
from neural_coder.transforms.tree import nodes_within, walk

from .source import Source

Scope = cst.FunctionDef | cst.Module

# Method calls that hand back the same object (or one that stands for it).
PASS_THROUGH_METHODS = frozenset(
    {"to", "cuda", "cpu", "float", "half", "double", "bfloat16", "train", "eval", "requires_grad_"}
)


@dataclass
class Function:
    node: cst.FunctionDef
    name: str
    cls: cst.ClassDef | None  # the class whose body defines it (a method)

    @property
    def key(self) -> str:
        return f"{self.cls.name.value}.{self.name}" if self.cls is not None else self.name

    @property
    def is_method(self) -> bool:
        return self.cls is not None and bool(self.node.params.params)

    def positional_params(self) -> list[str]:
        names = [p.name.value for p in (*self.node.params.posonly_params, *self.node.params.params)]
        return names[1:] if self.is_method else names

    def all_params(self) -> list[str]:
        p = self.node.params
        names = [x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)]
        return names[1:] if self.is_method else names


@dataclass
class Assignment:
    target: str  # source text of the target: "model", "self.model"
    value: cst.BaseExpression
    statement: cst.BaseStatement
    scope: Scope
    # `a, b = helper()`: the item of what `value` returns that the target takes (0, 1, ...)
    position: int | None = None


@dataclass
class Index:
    source: Source
    functions: dict[cst.FunctionDef, Function] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    classes_in: dict[cst.Module, list[cst.ClassDef]] = field(default_factory=dict)
    calls: list[cst.Call] = field(default_factory=list)
    assignments: dict[str, list[Assignment]] = field(default_factory=lambda: defaultdict(list))
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin
    # the imports of each file of a project (`imports` is the entry script's)
    module_imports: dict[cst.Module, dict[str, str]] = field(default_factory=dict)
    _resolved: dict[cst.Call, Function | None] = field(default_factory=dict, repr=False)
    # the calls of each function (by id), and how many of `calls` that covers
    _call_sites: dict[int, list[cst.Call]] = field(default_factory=dict, repr=False)
    _call_sites_cover: int = field(default=-1, repr=False)
    # `values_of` results by (expression, scope), with the depth they were followed from
    _values: dict[tuple[int, int], tuple[int, list[tuple[cst.BaseExpression, Scope]]]] = field(
        default_factory=dict, repr=False
    )
    _values_cover: tuple[int, int] = field(default=(-1, -1), repr=False)

    # -- scopes -----------------------------------------------------------------
    def scope_of(self, node: cst.CSTNode) -> Scope:
        return self.source.enclosing_function(node) or self.source.module_of(node)

    def imports_of(self, node: cst.CSTNode) -> dict[str, str]:
        """The imports of the file `node` is in."""
        return self.module_imports.get(self.source.module_of(node), self.imports)

    def class_of(self, scope: Scope) -> cst.ClassDef | None:
        """The class of the method `scope` is, or is nested in (a closure a method
        defines reads the method's `self`)."""
        while isinstance(scope, cst.FunctionDef) and scope in self.functions:
            fn = self.functions[scope]
            if fn.cls is not None:
                return fn.cls
            outer = self.source.enclosing_function(scope)
            if outer is None or not any(
                p.name.value == "self" for p in (*outer.params.posonly_params, *outer.params.params)
            ):
                return None
            scope = outer
        return None

    def function(self, scope: Scope) -> Function | None:
        return self.functions.get(scope) if isinstance(scope, cst.FunctionDef) else None

    def describe(self, scope: Scope) -> str:
        fn = self.function(scope)
        return f"{fn.key}()" if fn else "module level"

    # -- names ------------------------------------------------------------------
    def qualified(self, expr: cst.BaseExpression) -> str:
        """Dotted name of `expr` with import aliases expanded ("nn.Linear" -> "torch.nn.Linear")."""
        text = self.source.code(expr)
        head, _, rest = text.partition(".")
        origin = self.imports_of(expr).get(head)
        if origin is None:
            return text
        return f"{origin}.{rest}" if rest else origin

    def assignments_in(self, target: str, scope: Scope) -> list[Assignment]:
        return [a for a in self.assignments.get(target, []) if a.scope is scope]

    def class_assignments(self, target: str, cls: cst.ClassDef) -> list[Assignment]:
        """Assignments of `self.x` in any method of `cls`."""
        return [
            a
            for a in self.assignments.get(target, [])
            if isinstance(a.scope, cst.FunctionDef) and self.class_of(a.scope) is cls
        ]

    # -- calls ------------------------------------------------------------------
    def resolve_call(self, call: cst.Call) -> Function | None:
        """The function or method of this file that `call` runs, when it can be told."""
        if call not in self._resolved:
            self._resolved[call] = self._resolve_call(call)
        return self._resolved[call]

    def _resolve_call(self, call: cst.Call) -> Function | None:
        func = call.func
        scope = self.scope_of(call)
        if isinstance(func, cst.Name):
            name = func.value
            if name in self.classes:
                return self._method(self.classes[name], "__init__")
            candidates = [f for f in self.functions.values() if f.cls is None and f.name == name]
            nested = [f for f in candidates if self.scope_of(f.node) is scope]
            module = self.source.module_of(call)
            chosen = nested or [f for f in candidates if self.scope_of(f.node) is module]
            if chosen:
                return chosen[0]
            origin = self.imports_of(call).get(name)
            return self.imported_function(origin, call) if origin else None
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver = func.value
            cls = self.class_of(scope)
            if m.matches(receiver, m.Name("self")) and cls is not None:
                return self._method(cls, method)
            head = self.source.code(receiver).split(".")[0]
            if head in self.imports_of(call):  # engine.train_one_epoch(...)
                fn = self.imported_function(self.qualified(func), call)
                if fn is not None:
                    return fn
            owner = self.instance_class(receiver, scope)
            if owner is not None:
                return self._method(owner, method)
        return None

    def imported_function(self, dotted: str, at: cst.CSTNode, depth: int = 0) -> Function | None:
        """The function (or class constructor) of another file of the project that an
        import names, following re-exports (`from .train_utils import train` in a
        package's `__init__.py`)."""
        found = self.source.resolve_import(dotted, at)
        if found is None or depth > 8:
            return None
        module, name = found
        if not name or "." in name:
            return None
        for fn in self.functions.values():
            if fn.cls is None and fn.name == name and self.scope_of(fn.node) is module:
                return fn
        cls = next((c for c in self.classes_in.get(module, []) if c.name.value == name), None)
        if cls is not None:
            return self._method(cls, "__init__")
        origin = self.module_imports.get(module, {}).get(name)
        return self.imported_function(origin, module, depth + 1) if origin else None

    def imported_class(self, dotted: str, at: cst.CSTNode, depth: int = 0) -> cst.ClassDef | None:
        """The class of another file of the project that a dotted import names
        (`models.TinyNet`), following re-exports."""
        found = self.source.resolve_import(dotted, at)
        if found is None or depth > 8:
            return None
        module, name = found
        if not name or "." in name:
            return None
        for cls in self.classes_in.get(module, []):
            if cls.name.value == name:
                return cls
        origin = self.module_imports.get(module, {}).get(name)
        return self.imported_class(origin, module, depth + 1) if origin else None

    def call_sites(self, fn: Function) -> list[cst.Call]:
        """The calls that run `fn`, in file order. Resolved once for all functions:
        following a parameter to its arguments asks this for every function it meets."""
        if self._call_sites_cover != len(self.calls):
            sites: dict[int, list[cst.Call]] = defaultdict(list)
            for call in self.calls:
                target = self.resolve_call(call)
                if target is not None:
                    sites[id(target)].append(call)
            self._call_sites, self._call_sites_cover = dict(sites), len(self.calls)
        return list(self._call_sites.get(id(fn), ()))

    def bind_arguments(self, call: cst.Call, fn: Function) -> dict[str, cst.BaseExpression]:
        """`fn`'s parameters bound by `call` (or by `partial(fn, ...)`, after the function)."""
        params = fn.positional_params()
        bound: dict[str, cst.BaseExpression] = {}
        position = 0
        for arg in call.args[1:] if is_partial(call) else call.args:
            if arg.star:
                continue
            if arg.keyword is not None:
                bound[arg.keyword.value] = arg.value
            elif position < len(params):
                bound[params[position]] = arg.value
                position += 1
        return bound

    def instance_class(self, expr: cst.BaseExpression, scope: Scope) -> cst.ClassDef | None:
        """The class of this file that `expr` is an instance of, when it is assigned
        from that class's constructor in the same or the module scope. (Direct
        assignments only: following parameters would need call resolution again.)"""
        text = self.source.code(expr)
        module = self.source.module_of(expr)
        for a in self.assignments_in(text, scope) + self.assignments_in(text, module):
            value = unwrap_pass_through(a.value)
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
                if value.func.value in self.classes:
                    return self.classes[value.func.value]
        return None

    def params_kept_as(self, init: Function, attribute: str) -> list[str]:
        """The parameters of `init` that it keeps as `attribute`: `self.model = model`, or
        `self.model = model.to(device)` (Module.to, .cuda() and .train() return the module)."""
        return [
            held.value
            for a in self.assignments_in(attribute, init.node)
            if isinstance(held := unwrap_pass_through(a.value), cst.Name)
            and held.value in init.all_params()
        ]

    def method_of(self, cls: cst.ClassDef, name: str) -> Function | None:
        """The method `name` as `cls`, or a base class of this file, defines it."""
        return self._method(cls, name)

    def _method(self, cls: cst.ClassDef, name: str) -> Function | None:
        seen: set[str] = set()
        pending = [cls]
        while pending:
            current = pending.pop(0)
            if current.name.value in seen:
                continue
            seen.add(current.name.value)
            for fn in self.functions.values():
                if fn.cls is current and fn.name == name:
                    return fn
            for base in current.bases:
                if isinstance(base.value, cst.Name) and base.value.value in self.classes:
                    pending.append(self.classes[base.value.value])
        return None

    # -- following values -----------------------------------------------------------
    def values_of(
        self, expr: cst.BaseExpression, scope: Scope, depth: int = 0
    ) -> Iterator[tuple[cst.BaseExpression, Scope]]:
        """Every expression `expr` may stand for, followed through assignments,
        parameters, `self.x` and pass-through methods; leaves are yielded with the
        scope they live in (calls that are not pass-through, literals, ...).

        Each (expression, scope) is followed once: a parameter leads to the arguments of
        every call of its function, so the same chains are met again from many starts
        (a project's model zoo: seconds per file without this). A result followed from a
        depth at most this one's is as complete as following it again."""
        cover = (len(self.calls), len(self.assignments))
        if self._values_cover != cover:
            self._values, self._values_cover = {}, cover
        key = (id(expr), id(scope))
        known = self._values.get(key)
        if known is None or known[0] > depth:
            known = (depth, list(self._follow_values(expr, scope, depth)))
            self._values[key] = known
        yield from known[1]

    def _follow_values(
        self, expr: cst.BaseExpression, scope: Scope, depth: int
    ) -> Iterator[tuple[cst.BaseExpression, Scope]]:
        if depth > 12:
            return
        expr = unwrap_pass_through(expr)
        text = self.source.code(expr)
        if isinstance(expr, cst.Name):
            # `model = model.to(device)` stands for what `model` was before: skip it
            local = [
                a
                for a in self.assignments_in(text, scope)
                if not m.matches(unwrap_pass_through(a.value), m.Name(text))
            ]
            fn = self.function(scope)
            if local:
                for a in local:
                    yield from self.values_assigned(a, depth)
                return
            if fn is not None and text in fn.all_params():
                for call in self.call_sites(fn):
                    arg = self.bind_arguments(call, fn).get(text)
                    if arg is not None:
                        yield from self.values_of(arg, self.scope_of(call), depth + 1)
                return
            if not isinstance(scope, cst.Module):
                yield from self.values_of(expr, self.scope_of(scope), depth + 1)
                return
            yield expr, scope
            return
        if m.matches(expr, m.Attribute(value=m.Name("self"))):
            cls = self.class_of(scope)
            found = self.class_assignments(text, cls) if cls is not None else []
            for a in found:
                yield from self.values_assigned(a, depth)
            if not found:
                yield expr, scope
            return
        if isinstance(expr, cst.Call):
            fn = self.resolve_call(expr)
            if fn is not None and fn.name != "__init__":
                returned = [r.value for r in iter_returns(fn.node) if r.value is not None]
                for value in returned:
                    yield from self.values_of(value, fn.node, depth + 1)
                if returned:
                    return
        yield expr, scope

    def values_assigned(
        self, a: Assignment, depth: int = 0
    ) -> Iterator[tuple[cst.BaseExpression, Scope]]:
        """The values of an assignment; for `a, b = helper()` the item of each tuple the
        helper returns that the target takes."""
        for leaf, scope in self.values_of(a.value, a.scope, depth + 1):
            if (
                a.position is not None
                and isinstance(leaf, cst.Tuple | cst.List)
                and len(leaf.elements) > a.position
                and not any(isinstance(e, cst.StarredElement) for e in leaf.elements)
            ):
                yield from self.values_of(leaf.elements[a.position].value, scope, depth + 1)
            else:
                yield leaf, scope


def enclosing_loop(index: Index, node: cst.CSTNode) -> cst.CSTNode | None:
    """The nearest `for` / `while` around `node` in its own function (None: it runs once
    per call of that function, or of the module)."""
    for ancestor in index.source.ancestors(node):
        if isinstance(ancestor, cst.For | cst.While):
            return ancestor
        if isinstance(ancestor, cst.FunctionDef | cst.Lambda | cst.ClassDef):
            return None
    return None


#: statements that may skip what they hold (a `with` body always runs)
BRANCHING: tuple[type[cst.CSTNode], ...] = (cst.If, cst.For, cst.While, cst.Try)


def unconditional(
    index: Index, node: cst.CSTNode, scope: Scope, also: tuple[type[cst.CSTNode], ...] = ()
) -> bool:
    """`node` runs whenever `scope` runs: no `if`, loop or `try` of `scope` (nor one of
    the node types `also` names) between it and the scope's body."""
    kinds = BRANCHING + also
    for ancestor in index.source.ancestors(node):
        if ancestor is scope:
            return True
        if isinstance(ancestor, kinds):
            return False
    return True


def is_partial(value: cst.BaseExpression) -> bool:
    """`partial(fn, ...)` / `functools.partial(fn, ...)`."""
    if not isinstance(value, cst.Call) or not value.args:
        return False
    func = value.func
    if isinstance(func, cst.Attribute):
        return func.attr.value == "partial"
    return isinstance(func, cst.Name) and func.value == "partial"


def unwrap_pass_through(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`Net().to(device).train()` -> `Net()`."""
    return strip_method_calls(expr, PASS_THROUGH_METHODS)


def strip_method_calls(expr: cst.BaseExpression, methods: Container[str]) -> cst.BaseExpression:
    """`expr` without the trailing calls of `methods` on it (`x.to(d).cuda()` -> `x`)."""
    while (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in methods
    ):
        expr = expr.func.value
    return expr


def iter_returns(fn: cst.FunctionDef) -> Iterator[cst.Return]:
    """Return statements of `fn` itself (not of functions nested in it)."""
    found = _RETURNS.get(fn)
    if found is None:  # analysis asks about the same functions many times: look at each once
        own = nodes_within(fn, (cst.FunctionDef, cst.Lambda))
        found = tuple(n for n in own if type(n) is cst.Return)
        if len(_RETURNS) >= _RETURNS_KEPT:  # (nodes take no weak references: a bounded cache)
            del _RETURNS[next(iter(_RETURNS))]
        _RETURNS[fn] = found
    yield from found


_RETURNS: dict[cst.FunctionDef, tuple[cst.Return, ...]] = {}  # by identity, oldest first
_RETURNS_KEPT = 2048


class _IndexBuilder(cst.CSTVisitor):
    def __init__(self, index: Index) -> None:
        self.index = index
        self.source = index.source
        self.class_stack: list[cst.ClassDef | None] = []
        self.module = self.source.module
        self.imports: dict[str, str] = {}

    def visit_Module(self, node: cst.Module) -> None:
        self.module = node
        self.imports = self.index.module_imports.setdefault(node, {})
        if node is self.source.module:
            self.index.imports = self.imports

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.index.classes.setdefault(node.name.value, node)
        self.index.classes_in.setdefault(self.module, []).append(node)
        self.class_stack.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.class_stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        parent = self.source.parent(self.source.parent(node) or node)
        owner = self.class_stack[-1] if self.class_stack else None
        cls = owner if parent is owner else None
        self.index.functions[node] = Function(node=node, name=node.name.value, cls=cls)
        self.class_stack.append(None)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.class_stack.pop()

    def visit_Call(self, node: cst.Call) -> None:
        self.index.calls.append(node)

    def _record(
        self,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        node: cst.CSTNode,
        position: int | None = None,
        nested: bool = False,
    ) -> None:
        statement = self.source.statement_of(node)
        scope = self.index.scope_of(node)
        if isinstance(target, cst.Name | cst.Attribute):
            text = self.source.code(target)
            self.index.assignments[text].append(Assignment(text, value, statement, scope, position))
        elif isinstance(target, cst.Tuple | cst.List):
            values = _unpacked(value)
            if not nested and values is not None and len(target.elements) == len(values):
                for t, v in zip(target.elements, values):
                    self._record(t.value, v, node)
                return
            # the name exists; its value is the item at its position of what `value`
            # gives (a helper's returned tuple), when that can be read
            starred = nested or any(isinstance(e, cst.StarredElement) for e in target.elements)
            for i, t in enumerate(target.elements):
                self._record(t.value, value, node, None if starred else i, nested=True)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._record(target.target, node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record(node.target, node.value, node)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = self.source.code(alias.name)
            local = alias.asname.name.value if alias.asname else dotted.split(".")[0]  # type: ignore[union-attr]
            self.imports[local] = dotted if alias.asname else local

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar) or (node.module is None and not node.relative):
            return
        dots = "." * len(node.relative)
        module = dots + self.source.code(node.module) if node.module is not None else ""
        for alias in node.names:
            name = self.source.code(alias.name)
            local = alias.asname.name.value if alias.asname else name  # type: ignore[union-attr]
            # `from . import engine` binds the module `.engine`
            self.imports[local] = f"{module}.{name}" if module else f"{dots}{name}"


def _unpacked(value: cst.BaseExpression) -> list[cst.BaseExpression] | None:
    """The values a tuple assignment unpacks: a tuple literal's items, or the
    arguments of `accelerator.prepare(a, b, ...)`, which hands them back in order."""
    if isinstance(value, cst.Tuple | cst.List):
        return [e.value for e in value.elements]
    if (
        isinstance(value, cst.Call)
        and m.matches(value.func, m.Attribute(attr=m.Name("prepare") | m.Name("setup_dataloaders")))
        and all(not a.star and a.keyword is None for a in value.args)
    ):
        return [a.value for a in value.args]
    return None


def build_index(source: Source) -> Index:
    """One index over the source's files (the entry script first: its classes win a
    name that several files define)."""
    index = Index(source=source)
    for part in source.parts:
        walk(part.module, _IndexBuilder(index))
    return index
