"""Step 1 of `revert`: remove what `optimize` inserts, giving a candidate original
(proven by the package's `revert_source`, never written unproven)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms.snippets import MARKER, WRAPPED_MARKER, join_lines
from neural_coder.transforms.tree import iter_nodes

from .inline import drop_last, without_int8_loader, without_state_dict_wrapper

#: modules the tool imports from (plus what `teacher` and friends need)
TOOL_MODULES = ("neural_coder.runtime", "neural_compressor")
TOOL_PLAIN_IMPORTS = ("copy", "torch")
CALLBACK = "CompressionCallback"
INSERTED_NAME = re.compile(
    r"^(compression_manager|compression_callback|teacher_model|quantized_model|outputs|model_inputs)(_\d+)?$"
)

#: the name `optimize` gives a loss that `.backward()` was called on unnamed
HOISTED_LOSS = re.compile(r"^(nc_)?loss(_\d+)?$")
#: the state dict a float reload after QAT reads once (`planning/loop_preparation.py`)
HOISTED_STATE = re.compile(r"^(nc_)?loaded_state(_\d+)?$")
#: values that need no parentheses where a name stood
ATOMS = (cst.Name, cst.Call, cst.Attribute, cst.Subscript)


def _marked(statement: cst.CSTNode) -> bool:
    """A statement the tool inserted: a simple one marked at its end, a block (the
    last-epoch fit's `if`) on its header line."""
    if isinstance(statement, cst.SimpleStatementLine):
        whitespace = statement.trailing_whitespace
    elif isinstance(getattr(statement, "body", None), cst.IndentedBlock):
        whitespace = statement.body.header  # type: ignore[attr-defined]
    else:
        return False
    return whitespace.comment is not None and whitespace.comment.value == MARKER


def _names_bound(statement: cst.SimpleStatementLine) -> set[str]:
    names: set[str] = set()
    for small in statement.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                if isinstance(target.target, cst.Name):
                    names.add(target.target.value)
    return names


def _is_inserted_name(node: cst.BaseExpression, inserted: set[str]) -> bool:
    if isinstance(node, cst.Name):
        return node.value in inserted
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
        and node.attr.value in inserted
    )


class _Strip(cst.CSTTransformer):
    """Remove the tool's statements, parameters, keyword arguments and callbacks."""

    def __init__(self, inserted: set[str]) -> None:
        super().__init__()
        self.inserted = inserted
        self.hoisted: dict[str, cst.BaseExpression] = {}

    def _body(self, body: Iterable[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        pending: dict[str, cst.BaseExpression] = {}
        for statement in body:
            if _marked(statement):
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue  # an inserted block
                hoisted = _hoisted(statement.body[0])
                if hoisted is not None:
                    name, value = hoisted
                    if pending:  # `loss = criterion(outputs, y)` after `outputs = model(x)`
                        put_back = _PutBack(pending)
                        value = value.visit(put_back)  # type: ignore[assignment]
                        pending = put_back.hoisted
                    pending[name] = value
                continue
            if pending:
                statement = statement.visit(_PutBack(pending))  # type: ignore[assignment]
                pending = {}
            out.append(statement)
        return out

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated_node.with_changes(body=self._body(updated_node.body))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return updated_node.with_changes(body=self._body(updated_node.body))

    def leave_Parameters(
        self, original_node: cst.Parameters, updated_node: cst.Parameters
    ) -> cst.Parameters:
        return updated_node.with_changes(
            params=drop_last(updated_node.params, self._added_param),
            kwonly_params=drop_last(updated_node.kwonly_params, self._added_param),
        )

    def _added_param(self, param: cst.Param) -> bool:
        return param.name.value in self.inserted and param.name.value.startswith(
            "compression_manager"
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        def added(arg: cst.Arg) -> bool:
            if arg.keyword is None:
                return False
            if arg.keyword.value.startswith("compression_manager"):
                return _is_inserted_name(arg.value, self.inserted)
            if arg.keyword.value == "trainer_defaults" and isinstance(arg.value, cst.Dict):
                return self._only_our_callbacks(arg.value)
            return (
                arg.keyword.value == "callbacks"
                and isinstance(arg.value, cst.List)
                and len(arg.value.elements) == 1
                and self._is_callback(arg.value.elements[0].value)
            )

        args = drop_last(updated_node.args, added)
        args = [self._without_callback(self._without_default_callback(a)) for a in args]
        return without_state_dict_wrapper(without_int8_loader(updated_node.with_changes(args=args)))

    def _is_callback(self, node: cst.BaseExpression) -> bool:
        """`CompressionCallback(...)`, or the `compression_callback` an inserted statement binds."""
        return _is_callback(node) or (
            _is_inserted_name(node, self.inserted)
            and isinstance(node, cst.Name)
            and node.value.startswith("compression_callback")
        )

    def _only_our_callbacks(self, value: cst.Dict) -> bool:
        """`{"callbacks": [compression_callback]}`: the trainer_defaults LightningCLI got."""
        return len(value.elements) == 1 and self._our_callbacks_entry(value.elements[0])

    def _our_callbacks_entry(self, element: cst.BaseDictElement) -> bool:
        return (
            isinstance(element, cst.DictElement)
            and isinstance(element.key, cst.SimpleString)
            and element.key.evaluated_value == "callbacks"
            and isinstance(element.value, cst.List)
            and len(element.value.elements) == 1
            and self._is_callback(element.value.elements[0].value)
        )

    def _without_default_callback(self, arg: cst.Arg) -> cst.Arg:
        """LightningCLI's trainer_defaults: the callback appended to its "callbacks" list, the
        "callbacks" entry appended to the dict, or `{**(value), "callbacks": [...]}` -> value."""
        value = arg.value
        if arg.keyword is None or arg.keyword.value != "trainer_defaults":
            return arg
        if not isinstance(value, cst.Dict) or not value.elements:
            return arg
        elements = list(value.elements)
        first, last = elements[0], elements[-1]
        if (
            len(elements) == 2
            and isinstance(first, cst.StarredDictElement)
            and isinstance(last, cst.DictElement)
            and isinstance(last.value, cst.List)
            and last.value.elements
            and self._is_callback(last.value.elements[-1].value)
        ):
            return arg.with_changes(value=first.value.with_changes(lpar=[], rpar=[]))
        if len(elements) > 1 and self._our_callbacks_entry(last):
            return arg.with_changes(
                value=value.with_changes(elements=drop_last(elements, self._our_callbacks_entry))
            )
        new = []
        for element in elements:
            if (
                isinstance(element, cst.DictElement)
                and isinstance(element.key, cst.SimpleString)
                and element.key.evaluated_value == "callbacks"
                and isinstance(element.value, cst.List)
                and len(element.value.elements) > 1
                and self._is_callback(element.value.elements[-1].value)
            ):
                items = drop_last(element.value.elements, lambda e: self._is_callback(e.value))
                element = element.with_changes(value=element.value.with_changes(elements=items))
            new.append(element)
        return arg.with_changes(value=value.with_changes(elements=new))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        """A call optimize laid out again (its one line no longer fit) goes back onto one line."""
        comment = updated_node.trailing_whitespace.comment
        if comment is None or comment.value != WRAPPED_MARKER:
            return updated_node
        updated_node = updated_node.with_changes(trailing_whitespace=cst.TrailingWhitespace())
        code = cst.Module(body=[updated_node.with_changes(leading_lines=[])]).code
        joined = cst.parse_module(join_lines(code)).body
        if len(joined) != 1 or not isinstance(joined[0], cst.SimpleStatementLine):
            return updated_node
        return joined[0].with_changes(leading_lines=updated_node.leading_lines)

    def _without_callback(self, arg: cst.Arg) -> cst.Arg:
        """callbacks=[mine, CompressionCallback(...)] -> callbacks=[mine]; the
        `[*(value or []), CompressionCallback(...)]` form -> callbacks=value."""
        value = arg.value
        if (
            arg.keyword is None
            or arg.keyword.value != "callbacks"
            or not isinstance(value, cst.List)
        ):
            return arg
        elements = list(value.elements)
        if len(elements) < 2 or not self._is_callback(elements[-1].value):
            return arg
        first = elements[0]
        if (
            len(elements) == 2
            and isinstance(first, cst.StarredElement)
            and isinstance(first.value, cst.BooleanOperation)
            and isinstance(first.value.right, cst.List)
            and not first.value.right.elements
        ):
            inner = first.value.left
            return arg.with_changes(value=inner.with_changes(lpar=[], rpar=[]))
        elements = elements[:-1]
        elements[-1] = elements[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return arg.with_changes(value=value.with_changes(elements=elements))


def _hoisted(small: cst.BaseSmallStatement) -> tuple[str, cst.BaseExpression] | None:
    """(name, value) of a statement that names a value out of the next statement:
    `outputs = model(x)  # neural-coder` (the model call), `loss = criterion(outputs, y)
    # neural-coder` (the loss `.backward()` was called on); not the distillation hook
    that binds the script's own loss anew."""
    if not (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        return None
    name, value = small.targets[0].target.value, small.value
    if name.removeprefix("nc_").startswith("outputs") and isinstance(value, cst.Call):
        return name, value
    hook = any(
        isinstance(node, cst.Attribute) and node.attr.value == "on_after_compute_loss"
        for node in iter_nodes(value)
    )
    if (HOISTED_LOSS.match(name) and not hook) or HOISTED_STATE.match(name):
        return name, value
    return None


class _PutBack(cst.CSTTransformer):
    def __init__(self, hoisted: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.hoisted = dict(hoisted)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        value = self.hoisted.pop(updated_node.value, updated_node)
        if value is not updated_node and not isinstance(value, ATOMS) and not value.lpar:
            # `(criterion(outputs, y) + reg).backward()`: the parentheses `loss` did not need
            return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return value


def _is_callback(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == CALLBACK
    )


class _UsedNames(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._in_import = 0

    def visit_Import(self, node: cst.Import) -> None:
        self._in_import += 1

    def leave_Import(self, original_node: cst.Import) -> None:
        self._in_import -= 1

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._in_import += 1

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        self._in_import -= 1

    def visit_Name(self, node: cst.Name) -> None:
        if not self._in_import:
            self.names.add(node.value)


def _module_name(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    return cst.Module([]).code_for_node(node)


class _DropImports(cst.CSTTransformer):
    """Imports of the tool's modules (and `copy`/`torch`) that nothing uses any more."""

    def __init__(self, used: set[str]) -> None:
        super().__init__()
        self.used = used
        self.removed_modules: list[str] = []
        self._first: cst.BaseStatement | None = None
        self._removed_first = False
        self._repeated: set[int] = set()

    def visit_Module(self, node: cst.Module) -> None:
        self._first = node.body[0] if node.body else None
        # `import torch` inserted above a notebook's cell that imports it again
        codes = [node.code_for_node(s).strip() for s in node.body]
        self._repeated = {
            id(s)
            for i, s in enumerate(node.body)
            if isinstance(s, cst.SimpleStatementLine)
            and len(s.body) == 1
            and isinstance(s.body[0], cst.Import)
            and codes[i] in codes[i + 1 :]
        }

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        """Imports inserted above a script's first statement are followed by a blank line,
        which would be left at the top of the file once they are removed."""
        body = list(updated_node.body)
        if not self._removed_first or not body:
            return updated_node
        leading = body[0].leading_lines
        if leading and all(line.comment is None for line in leading):
            body[0] = body[0].with_changes(leading_lines=[])
        return updated_node.with_changes(body=body)

    def _unused(self, alias: cst.ImportAlias) -> bool:
        bound = alias.asname.name if alias.asname else alias.name  # type: ignore[union-attr]
        name = _module_name(bound).split(".")[0]  # type: ignore[arg-type]
        return name not in self.used

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if len(updated_node.body) != 1:
            return updated_node
        node = updated_node.body[0]
        if isinstance(node, cst.ImportFrom) and not node.relative:
            module = _module_name(node.module)
            if not module.startswith(TOOL_MODULES) or isinstance(node.names, cst.ImportStar):
                return updated_node
            names = list(node.names)
        elif isinstance(node, cst.Import):
            names = list(node.names)
            if not all(_module_name(a.name) in TOOL_PLAIN_IMPORTS + TOOL_MODULES for a in names):
                return updated_node
            module = ",".join(_module_name(a.name) for a in names)
        else:
            return updated_node
        keep = [a for a in names if not self._unused(a)]
        if id(original_node) in self._repeated:
            keep = []
        if len(keep) == len(names):
            return updated_node
        self.removed_modules.append(module)
        if not keep:
            if original_node is self._first:
                self._removed_first = True
                self._first = None  # the next statement, if removed too, is first now
            return cst.RemoveFromParent()
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=[node.with_changes(names=keep)])


@dataclass
class Stripped:
    text: str
    marked_lines: list[int]
    target: str


def inserted_names(text: str) -> set[str]:
    """The names the tool's marked statements bind (`compression_manager`, `teacher_model`)."""
    inserted: set[str] = set()
    for statement in all_marked(cst.parse_module(text)):
        inserted |= {n for n in _names_bound(statement) if INSERTED_NAME.match(n)}
    return inserted


def strip_inserted(text: str, bound_elsewhere: Iterable[str] = ()) -> Stripped:
    """The candidate original: `text` without what the tool inserts (not yet proven).
    `bound_elsewhere`: names the tool's statements in other files of the project bind
    (a module's `train_one_epoch` gets the `compression_manager` its entry script makes)."""
    module = cst.parse_module(text)
    marked = [n for n, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARKER)]
    inserted = inserted_names(text) | set(bound_elsewhere)
    stripped = module.visit(_Strip(inserted))
    used = _UsedNames()
    stripped.visit(used)
    drop = _DropImports(used.names)
    stripped = stripped.visit(drop)
    target = (
        "inc" if any(m.startswith("neural_compressor") for m in drop.removed_modules) else "runtime"
    )
    return Stripped(stripped.code, marked, target)


def all_marked(module: cst.Module) -> Iterator[cst.SimpleStatementLine]:
    found: list[cst.SimpleStatementLine] = []

    class Collect(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            if _marked(node):
                found.append(node)

    module.visit(Collect())
    return iter(found)
