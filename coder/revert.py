"""`neural-coder revert`: give back the script as it was before `optimize`, byte for byte.

Two steps, so that nothing is ever half-reverted:

1. **strip** what the tool inserts: every statement whose line ends with the
   `# neural-coder` marker, the `compression_manager` parameters and keyword
   arguments it threads through helper functions, the `CompressionCallback` it
   adds to a Trainer's `callbacks=`, a model call it hoisted into a marked
   statement, and the imports that nothing uses any more;
2. **prove** it: `optimize` is run again on that candidate with the approach,
   target and settings read back from the inserted code, and must reproduce the
   current file exactly. When it does not (a person edited an inserted line, or
   wrote code the strip step cannot tell from ours), the file is refused and the
   lines that differ are listed.

Works on text (`revert_source`), so the notebook front end can reuse it per cell.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from neural_coder.api import COMPRESSION_CONFIGS, Output, compression_in, rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.files import read_text, unified_diff, write_atomic
from neural_coder.options import SECTIONS, build_options
from neural_coder.report import FileReport, Status
from neural_coder.transforms.snippets import MARKER

#: modules the tool imports from (plus what `teacher` and friends need)
TOOL_MODULES = ("neural_coder.runtime", "neural_compressor")
TOOL_PLAIN_IMPORTS = ("copy", "torch")
CALLBACK = "CompressionCallback"
INSERTED_NAME = re.compile(r"^(compression_manager|teacher_model|quantized_model|outputs)(_\d+)?$")
#: approaches tried per family of inserted configs, most likely first
FAMILY_APPROACHES = {
    "ptq": ("ptq-static", "ptq-dynamic", "ptq-auto"),
    "bf16": ("bf16",),
    "benchmark": ("benchmark",),
}
MAX_TRIES = 12


class RevertRefused(NeuralCoderError):
    """The inserted code cannot be removed exactly; the file is left as it is."""


def _marked(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and statement.trailing_whitespace.comment is not None
        and statement.trailing_whitespace.comment.value == MARKER
    )


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
                assert isinstance(statement, cst.SimpleStatementLine)
                small = statement.body[0]
                # `outputs = model(x)  # neural-coder` hoisted out of the next statement
                if (
                    isinstance(small, cst.Assign)
                    and isinstance(small.value, cst.Call)
                    and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)
                    and small.targets[0].target.value.startswith("outputs")
                ):
                    pending[small.targets[0].target.value] = small.value
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
            params=_drop_last(updated_node.params, self._added_param),
            kwonly_params=_drop_last(updated_node.kwonly_params, self._added_param),
        )

    def _added_param(self, param: cst.Param) -> bool:
        return param.name.value in self.inserted and param.name.value.startswith(
            "compression_manager"
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        def added(arg: cst.Arg) -> bool:
            if arg.keyword is None:
                return False
            if arg.keyword.value.startswith("compression_manager"):
                return _is_inserted_name(arg.value, self.inserted)
            return (
                arg.keyword.value == "callbacks"
                and isinstance(arg.value, cst.List)
                and len(arg.value.elements) == 1
                and _is_callback(arg.value.elements[0].value)
            )

        args = _drop_last(updated_node.args, added)
        args = [self._without_callback(a) for a in args]
        return updated_node.with_changes(args=args)

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
        if len(elements) < 2 or not _is_callback(elements[-1].value):
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


class _PutBack(cst.CSTTransformer):
    def __init__(self, hoisted: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.hoisted = dict(hoisted)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.hoisted.pop(updated_node.value, updated_node)


def _is_callback(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == CALLBACK
    )


def _drop_last(items: Any, added: Any) -> list[Any]:
    """Remove the items the tool appended; the new last item gets the comma layout back."""
    items = list(items)
    keep = [i for i in items if not added(i)]
    if len(keep) == len(items):
        return items
    if keep:
        removed_last = items[-1]
        if items.index(keep[-1]) < len(items) - 1:
            previous = keep[-1]
            comma = removed_last.comma
            simple = (
                isinstance(previous.comma, cst.Comma)
                and previous.comma.whitespace_before == cst.SimpleWhitespace("")
                and previous.comma.whitespace_after == cst.SimpleWhitespace(" ")
            )
            if isinstance(comma, cst.Comma) or not simple:
                keep[-1] = previous.with_changes(comma=comma)  # one per line: the closing comma
            else:
                keep[-1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return keep


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
        if len(keep) == len(names):
            return updated_node
        self.removed_modules.append(module)
        if not keep:
            return cst.RemoveFromParent()
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=[node.with_changes(names=keep)])


@dataclass
class Stripped:
    text: str
    marked_lines: list[int]
    target: str


def strip_inserted(text: str) -> Stripped:
    """The candidate original: `text` without what the tool inserts (not yet proven)."""
    module = cst.parse_module(text)
    marked = [n for n, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARKER)]
    inserted: set[str] = set()
    for statement in _all_marked(module):
        inserted |= {n for n in _names_bound(statement) if INSERTED_NAME.match(n)}
    stripped = module.visit(_Strip(inserted))
    used = _UsedNames()
    stripped.visit(used)
    drop = _DropImports(used.names)
    stripped = stripped.visit(drop)
    target = (
        "inc" if any(m.startswith("neural_compressor") for m in drop.removed_modules) else "runtime"
    )
    return Stripped(stripped.code, marked, target)


def _all_marked(module: cst.Module) -> Iterator[cst.SimpleStatementLine]:
    found: list[cst.SimpleStatementLine] = []

    class Collect(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            if _marked(node):
                found.append(node)

    module.visit(Collect())
    return iter(found)


# -- reading the settings back --------------------------------------------------------------
_FIELD_SECTION = {
    f: section
    for section, cls in SECTIONS.items()
    for f in cls.__dataclass_fields__  # type: ignore[attr-defined]
}


def _literal_settings(text: str) -> dict[str, dict[str, Any]]:
    """Literal keyword arguments of the inserted config calls, by options section."""
    settings: dict[str, dict[str, Any]] = {}
    module = cst.parse_module(text)
    for statement in _all_marked(module):
        code = module.code_for_node(statement)
        try:
            tree = ast.parse(code.strip())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id.startswith("teacher_model"):
                    value = ast.unparse(node.value)
                    if not value.startswith("copy.deepcopy("):
                        settings.setdefault("distillation", {})["teacher"] = value
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("load_state_dict"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                        settings.setdefault("distillation", {})["teacher"] = inner.value
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg not in _FIELD_SECTION or keyword.arg == "teacher":
                    continue
                try:
                    value = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
                if keyword.arg == "calibration_sampling_size" and isinstance(value, list):
                    value = value[0]
                settings.setdefault(_FIELD_SECTION[keyword.arg], {})[keyword.arg] = value
    return settings


def _approaches(text: str) -> list[str]:
    families = compression_in(text)
    post = [f for f in families if f in FAMILY_APPROACHES]
    if post:
        found = re.search(r"approach=[\"'](static|dynamic|auto)[\"']", text)
        first = [f"ptq-{found.group(1)}"] if found and "ptq" in post else []
        return first + [a for f in post for a in FAMILY_APPROACHES[f] if a not in first]
    order = {
        family: text.find(name + "(")
        for name, family in COMPRESSION_CONFIGS.items()
        if family in families
    }
    first = sorted(families, key=lambda f: order[f])
    rest = [p for p in itertools.permutations(families) if list(p) != first]
    return ["+".join(p) for p in [tuple(first), *rest]]


def _option_sets(text: str) -> list[dict[str, dict[str, Any]]]:
    literal = _literal_settings(text)
    without_steps = {
        k: {f: v for f, v in section.items() if f not in ("start_step", "end_step")}
        for k, section in literal.items()
    }
    sets: list[dict[str, dict[str, Any]]] = [{}, without_steps, literal]
    unique: list[dict[str, dict[str, Any]]] = []
    for s in sets:
        if s not in unique:
            unique.append(s)
    return unique


def revert_source(path: Path, text: str) -> tuple[str, FileReport]:
    """The original text and the report; raises `RevertRefused` when it cannot be proven."""
    report = FileReport(path=path, status=Status.UNCHANGED)
    if not compression_in(text) and MARKER not in text:
        report.message = "no code inserted by neural-coder was found; nothing to revert"
        return text, report
    try:
        stripped = strip_inserted(text)
    except cst.ParserSyntaxError as error:
        raise NeuralCoderError(
            f"does not parse: {error.message}", path=path, line=error.raw_line
        ) from None
    tried: list[tuple[str, str]] = []
    targets = [stripped.target] + [t for t in ("runtime", "inc") if t != stripped.target]
    for approach, options_set, target in itertools.product(
        _approaches(text), _option_sets(text), targets
    ):
        if len(tried) >= MAX_TRIES:
            break
        try:
            options = build_options(approach, target, dict(options_set), {})
            again, _ = rewrite_source(path, stripped.text, options)
        except NeuralCoderError:
            continue
        if again == text:
            report.status = Status.TRANSFORMED
            report.message = f"reverted: removed what `optimize --approach {approach}` inserted"
            if target != "runtime":
                report.message += f" (target: {target})"
            return stripped.text, report
        tried.append((approach, again))
    raise RevertRefused(
        _edited_message(text, tried),
        path=path,
        line=_edited_lines(text, tried)[0][0] if _edited_lines(text, tried) else None,
        hint=f"undo those edits, or restore {path.name}.bak; nothing was reverted",
    )


def _edited_lines(text: str, tried: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """Lines of `text` that the closest reproduction of the tool's output does not have."""
    if not tried:
        return [
            (n, line)
            for n, line in enumerate(text.splitlines(), 1)
            if line.rstrip().endswith(MARKER)
        ]
    current = text.splitlines()
    best = max(
        tried,
        key=lambda t: difflib.SequenceMatcher(
            a=current, b=t[1].splitlines(), autojunk=False
        ).ratio(),
    )
    lines: list[tuple[int, str]] = []
    matcher = difflib.SequenceMatcher(a=current, b=best[1].splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines += [(n + 1, current[n]) for n in range(i1, i2)]
        elif tag == "insert" and i1 < len(current):
            lines.append((i1 + 1, current[i1]))
    return lines


def _edited_message(text: str, tried: list[tuple[str, str]]) -> str:
    lines = _edited_lines(text, tried)
    shown = "\n".join(f"  line {n}: {line.strip()}" for n, line in lines[:20])
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    why = (
        "the code neural-coder inserted was edited since (or is not what this version inserts): "
        if tried
        else "the code carrying the neural-coder marker cannot be matched to any approach: "
    )
    return f"{why}these lines differ from what optimize writes\n{shown}{more}"


def revert_file(path: Path, output: Output | None = None) -> FileReport:
    output = output or Output()
    try:
        text = read_text(path)
        original, report = revert_source(path, text)
    except NeuralCoderError as error:
        return FileReport(
            path=path, status=Status.FAILED, message=error.render(), exit_code=error.exit_code
        )
    if original == text:
        return report
    report.diff = unified_diff(path, text, original)
    if output.dry_run:
        return report
    report.output = output.path or path
    report.backup = write_atomic(
        report.output, original, backup=output.backup and report.output == path
    )
    return report


def revert(paths: Iterable[Path | str], output: Output | None = None) -> list[FileReport]:
    return [revert_file(Path(p), output) for p in paths]
