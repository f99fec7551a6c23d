"""Remove imports that nothing uses any more.

What libcst's `RemoveImportsVisitor` does when a codemod command runs it (`migrate` used it
to drop the 1.x imports its rewrite left unused), byte for byte, without importing
`libcst.codemod` and with it `libcst.matchers` (tests/coder/test_startup.py):

* each removal names an import: `import module` (name None) or `from module import name`,
  with its local name (`as ...`, None for none); an import that matches one goes only if
  nothing uses it: no name in its scope reads it (for `import a.b`: `a.b` or `a`), it is
  not listed in an `__all__`, and no string annotation (`x: "Name"`, a `typing.TypeVar`
  bound) names it;
* a line left with no names goes; a removed name takes its comma along, keeping the
  comments that were in the whitespace after it;
* `from __future__` imports, star imports and relative imports stay.

Unlike libcst, which scans every import of the module first, only the imports a removal
names are checked, and `__all__` and the string annotations are read only when one of
them has no reader left: the answers are the same.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ImportAssignment, MetadataWrapper, Scope, ScopeProvider
from libcst.metadata.scope_provider import _gen_dotted_names

from .tree import walk

#: (module, name or None, local name or None)
Removal = tuple[str, str | None, str | None]

#: calls whose string arguments are annotations
_STRING_ANNOTATION_CALLS = {"typing.TypeVar"}


def remove_unused_imports(module: cst.Module, removals: Iterable[Removal]) -> cst.Module:
    """`module` without the imports of `removals` that nothing in it uses."""
    wrapper = MetadataWrapper(module)  # (a copy: every node once, as the scopes need)
    usage = _Usage(wrapper.module, wrapper.resolve(ScopeProvider))
    return wrapper.module.visit(_RemoveImports(list(removals), usage))


class _Usage:
    """Whether an imported name is still used (libcst's `GatherUnusedImportsVisitor`)."""

    def __init__(self, module: cst.Module, scopes: Mapping[cst.CSTNode, Scope | None]) -> None:
        self.module, self.scopes = module, scopes
        self._exported: set[str] | None = None
        self._annotation_names: set[str] | None = None

    def unused(self, alias: cst.ImportAlias, imp: cst.Import | cst.ImportFrom) -> bool:
        if isinstance(imp, cst.ImportFrom) and (
            isinstance(imp.names, cst.ImportStar)
            or imp.module is None
            or (isinstance(imp.module, cst.Name) and imp.module.value == "__future__")
        ):
            return False
        scope = self.scopes[imp]
        if scope is None:
            return False
        local = alias.asname.name if alias.asname is not None else alias.name
        assert isinstance(local, cst.Name | cst.Attribute)
        names = [name for name, _ in _gen_dotted_names(local)]
        if any(
            isinstance(assignment, ImportAssignment) and assignment.references
            for name in names
            for assignment in scope[name]
        ):
            return False
        return not any(n in self.exported() or n in self.annotation_names() for n in names)

    def exported(self) -> set[str]:
        if self._exported is None:
            gather = _GatherExports()
            walk(self.module, gather)
            self._exported = gather.names
        return self._exported

    def annotation_names(self) -> set[str]:
        if self._annotation_names is None:
            gather = _GatherStringAnnotationNames(self.scopes)
            walk(self.module, gather)
            self._annotation_names = gather.names
        return self._annotation_names


class _RemoveImports(cst.CSTTransformer):
    def __init__(self, removals: Sequence[Removal], usage: _Usage) -> None:
        self.usage = usage
        self.modules = {module: asname for module, name, asname in removals if name is None}
        self.names: dict[str, set[tuple[str, str | None]]] = {}
        for module, name, asname in removals:
            if name is not None:
                self.names.setdefault(module, set()).add((name, asname))

    def on_visit(self, node: cst.CSTNode) -> bool:
        # imports are statements: no expression holds one
        return not isinstance(node, cst.BaseExpression) and super().on_visit(node)

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.Import | cst.RemovalSentinel:
        names_to_keep = []
        for alias in original_node.names:
            if (
                alias.evaluated_name not in self.modules
                or alias.evaluated_alias != self.modules[alias.evaluated_name]
                or not self.usage.unused(alias, original_node)
            ):
                names_to_keep.append(alias)
        return _with_names(original_node, updated_node, names_to_keep, {})

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        names = original_node.names
        if (
            isinstance(names, cst.ImportStar)
            or updated_node.relative
            or updated_node.module is None
        ):
            return updated_node
        module = get_full_name_for_node(updated_node.module)
        if module not in self.names:
            return updated_node
        removed = self.names[module]
        updates: dict[str, Any] = {}
        names_to_keep: list[cst.ImportAlias] = []
        for alias in names:
            if (
                alias.evaluated_name,
                alias.evaluated_alias,
            ) not in removed or not self.usage.unused(alias, original_node):
                names_to_keep.append(alias)
                continue
            comma = alias.comma
            if not isinstance(comma, cst.Comma):
                continue
            # the removed name's comma: its whitespace's comments go to what is before it
            if names_to_keep:
                previous = names_to_keep[-1]
                if isinstance(previous.comma, cst.Comma):
                    previous = previous.with_deep_changes(
                        previous.comma,
                        whitespace_after=_merge_whitespace_after(
                            previous.comma.whitespace_after, comma.whitespace_after
                        ),
                    )
                else:
                    previous = previous.with_changes(comma=comma)
                names_to_keep[-1] = previous
            elif isinstance(updated_node.lpar, cst.LeftParen):
                updates["lpar"] = updated_node.lpar.with_changes(
                    whitespace_after=_merge_whitespace_after(
                        updated_node.lpar.whitespace_after, comma.whitespace_after
                    )
                )
        return _with_names(original_node, updated_node, names_to_keep, updates)


def _with_names(
    original_node: cst.Import | cst.ImportFrom,
    updated_node: cst.Import | cst.ImportFrom,
    names_to_keep: list[cst.ImportAlias],
    updates: dict[str, Any],
) -> Any:
    names = original_node.names
    assert not isinstance(names, cst.ImportStar)
    if names_to_keep == names:  # (as libcst: a list is never equal to the node's tuple)
        return updated_node
    if not names_to_keep:
        return cst.RemoveFromParent()
    if names_to_keep[-1] != names[-1]:
        names_to_keep[-1] = names_to_keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return updated_node.with_changes(**updates, names=names_to_keep)


def _merge_whitespace_after(
    left: cst.BaseParenthesizableWhitespace, right: cst.BaseParenthesizableWhitespace
) -> cst.BaseParenthesizableWhitespace:
    if not isinstance(right, cst.ParenthesizedWhitespace):
        return left
    if not isinstance(left, cst.ParenthesizedWhitespace):
        return right
    return left.with_changes(
        empty_lines=tuple(line for line in right.empty_lines if line.comment is not None)
    )


_Exportable = cst.List | cst.Tuple | cst.Set


class _GatherExports(cst.CSTVisitor):
    """The strings of the lists, tuples and sets assigned to `__all__` (libcst's
    `GatherExportsVisitor`, whose pruning this keeps: a walk goes into no other list)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._assigned: set[cst.CSTNode] = set()
        self._inside: set[cst.CSTNode] = set()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        return node.value is not None and self._assigns_export(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        if (
            isinstance(node.target, cst.Name)
            and node.target.value == "__all__"
            and isinstance(node.operator, cst.AddAssign)
            and isinstance(node.value, cst.List | cst.Tuple)
        ):
            self._assigned.add(node.value)
            return True
        return False

    def visit_Assign(self, node: cst.Assign) -> bool:
        return any(self._assigns_export(t.target, node.value) for t in node.targets)

    def _assigns_export(self, target: cst.BaseExpression, value: cst.BaseExpression) -> bool:
        if get_full_name_for_node(target) == "__all__":
            if isinstance(value, _Exportable):
                self._assigned.add(value)
                return True
        elif isinstance(target, cst.Tuple) and isinstance(value, cst.Tuple):
            for index, element in enumerate(target.elements):
                if get_full_name_for_node(element.value) == "__all__":
                    element_value = value.elements[index].value
                    if isinstance(element_value, _Exportable):
                        self._assigned.add(value)
                        self._assigned.add(element_value)
                        return True
        return False

    def _enter(self, node: cst.CSTNode) -> bool:
        if node in self._assigned:
            self._inside.add(node)
            return True
        return False

    def _leave(self, node: cst.CSTNode) -> None:
        self._assigned.discard(node)
        self._inside.discard(node)

    visit_List = visit_Tuple = visit_Set = _enter
    leave_List = leave_Tuple = leave_Set = _leave

    def visit_SimpleString(self, node: cst.SimpleString) -> bool:
        self._string(node)
        return False

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        self._string(node)
        return False

    def _string(self, node: cst.SimpleString | cst.ConcatenatedString) -> None:
        if self._inside:
            name = node.evaluated_value
            if isinstance(name, str):
                self.names.add(name)


class _GatherStringAnnotationNames(cst.CSTVisitor):
    """The names in the strings of annotations and of `typing.TypeVar` calls (libcst's
    `GatherNamesFromStringAnnotationsVisitor`; a `typing.Literal[...]` holds none)."""

    def __init__(
        self,
        scopes: Mapping[cst.CSTNode, Scope | None],
        typing_functions: Collection[str] = _STRING_ANNOTATION_CALLS,
    ) -> None:
        self.scopes, self.typing_functions = scopes, typing_functions
        self.names: set[str] = set()
        self._stack: list[cst.CSTNode] = []

    def _qualified_names(self, node: cst.CSTNode) -> set[str]:
        scope = self.scopes.get(node)
        return {q.name for q in scope.get_qualified_names_for(node)} if scope else set()

    def visit_Annotation(self, node: cst.Annotation) -> bool:
        self._stack.append(node)
        return True

    def leave_Annotation(self, original_node: cst.Annotation) -> None:
        self._stack.pop()

    def visit_Subscript(self, node: cst.Subscript) -> bool:
        return "typing.Literal" not in self._qualified_names(node)

    def visit_Call(self, node: cst.Call) -> bool:
        if self._qualified_names(node) & set(self.typing_functions):
            self._stack.append(node)
            return True
        return False

    def leave_Call(self, original_node: cst.Call) -> None:
        if self._stack and self._stack[-1] == original_node:
            self._stack.pop()

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        if self._stack:
            self._string(node)
        return False

    def visit_SimpleString(self, node: cst.SimpleString) -> bool:
        if self._stack:
            self._string(node)
        return False

    def _string(self, node: cst.SimpleString | cst.ConcatenatedString) -> None:
        value = node.evaluated_value
        if value is None:
            return
        try:
            parsed = cst.parse_module(value)
        except cst.ParserSyntaxError:
            return
        self.names |= _names_in(parsed)


def _names_in(tree: cst.CSTNode) -> set[str]:
    """The names a parsed annotation reads: its names outside attributes, and each dotted
    prefix of its attributes (`a.b.c`: `a.b.c`, `a.b`, `a`)."""
    names: set[str] = set()
    pending: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(tree, None)]
    while pending:
        node, parent = pending.pop()
        if isinstance(node, cst.Name) and not isinstance(parent, cst.Attribute):
            names.add(node.value)
        elif isinstance(node, cst.Attribute):
            names.update(name for name, _ in _gen_dotted_names(node))
        pending += [(child, node) for child in node.children]
    return names
