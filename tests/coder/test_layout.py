"""The module layout kept from the positions pass (transforms/layout.py) and what is built
on it: subtree slices, the layout walk, a node's code from the parsed text, and an edited
module written with the parsed text of its unchanged statements (transforms/written.py).
Each is checked against libcst's own answer on code of several shapes."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from neural_coder.analysis.source import parse_source
from neural_coder.transforms import tree
from neural_coder.transforms.edits import InsertStatements
from neural_coder.transforms.hooks import apply_edits
from neural_coder.transforms.layout import code_of, nodes_below
from neural_coder.transforms.written import module_code

SHAPES = {
    "plain": '''import torch  # a comment


@torch.no_grad()
def evaluate(model, loader):
    """Docstring."""
    total = 0
    for x, y in loader:
        out = model(
            x,
            y,
        )
        if out is None:
            continue
        elif out.sum() > 0:
            total += 1
        else:
            total -= 1
    return total


class Net(torch.nn.Module):
    def forward(self, x):
        try:
            return x
        except ValueError:
            pass
        finally:
            del x


for step in range(3):
    loss = evaluate(Net(), [])
''',
    "crlf": "import os\r\n\r\ndef f(a):\r\n    if a:\r\n        return 1\r\n    return 2\r\n\r\nfor i in range(2):\r\n    f(i)\r\n",
    "no trailing newline": "def f(a):\n    return a\n\nfor i in range(2):\n    f(i)",
    "tabs": "def f(a):\n\tif a:\n\t\treturn 1\n\treturn 2\n\nfor i in range(2):\n\tf(i)\n",
    "form feed": "import os\n\x0c\ndef f(a):\n    return a\n\nfor i in range(2):\n    f(i)\n",
}


def _source(text: str):
    return parse_source(Path("x.py"), text)


@pytest.mark.parametrize("shape", SHAPES)
def test_subtrees_are_libcst_visit_order(shape: str) -> None:
    source = _source(SHAPES[shape])
    module = source.module
    for node in [module, *list(source.parents)[::7]]:
        laid_out = nodes_below(node)
        assert laid_out is not None
        walked: list[cst.CSTNode] = []
        tree._walk(node, _Recorder(walked))  # libcst's order, without the layout
        semantic = (cst.BaseExpression, cst.BaseStatement, cst.BaseSmallStatement, cst.Arg)
        assert [n for n in laid_out if isinstance(n, semantic)] == [
            n for n in walked if isinstance(n, semantic)
        ]
        assert set(map(id, laid_out)) == set(map(id, walked))


class _Recorder(cst.CSTVisitor):
    def __init__(self, seen: list[cst.CSTNode]) -> None:
        self.seen = seen

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.seen.append(node)
        return True


class _Events(cst.CSTVisitor):
    """visit/leave of functions and calls; no descent into classes."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.events.append(("visit", node.name.value))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.events.append(("leave", original_node.name.value))

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.events.append(("class", node.name.value))
        return False

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.events.append(("left class", original_node.name.value))

    def visit_Call(self, node: cst.Call) -> None:
        self.events.append(("call", cst.Module([]).code_for_node(node.func)))


@pytest.mark.parametrize("shape", SHAPES)
def test_walk_over_the_layout_makes_libcst_calls(shape: str) -> None:
    source = _source(SHAPES[shape])
    fast, libcst_own = _Events(), _Events()
    tree.walk(source.module, fast)
    source.module.visit(libcst_own)
    assert fast.events == libcst_own.events
    assert tree._plain_visitor(_Events)


def test_a_visitor_with_field_methods_takes_libcsts_walk() -> None:
    class OnField(cst.CSTVisitor):
        def visit_Call_func(self, node: cst.Call) -> None: ...

    assert not tree._plain_visitor(OnField)


@pytest.mark.parametrize("shape", SHAPES)
def test_code_of_a_one_line_node_is_its_codegen(shape: str) -> None:
    source = _source(SHAPES[shape])
    checked = 0
    for node in source.parents:
        code = code_of(node)
        if code is None:
            continue
        try:
            expected = source.module.code_for_node(node)
        except cst.CSTCodegenError:  # written only by its parent (a default comma, ...)
            continue
        assert code == expected
        checked += 1
    assert checked > 10
    assert code_of(cst.parse_expression("fresh(node)")) is None  # no layout holds it


def _loops_and_ifs(module: cst.Module) -> list[cst.CSTNode]:
    return [n for n in nodes_below(module) or [] if isinstance(n, cst.For | cst.If)]


@pytest.mark.parametrize("shape", SHAPES)
def test_edited_module_written_with_parsed_text_is_its_codegen(shape: str) -> None:
    source = _source(SHAPES[shape])
    anchors = _loops_and_ifs(source.module)
    statements = [n for n in source.parents if isinstance(n, cst.SimpleStatementLine)]
    edits = [
        InsertStatements(anchor=a, where="body_start", code="a = 1")
        for a in anchors
        if isinstance(a, cst.For)
    ]
    edits += [InsertStatements(anchor=statements[-1], where="after", code="b = 2")]
    edits += [InsertStatements(anchor=statements[0], where="before", code="c = 3")]
    edited = apply_edits(source.module, edits, parents=source.parents)
    assert module_code(edited) == edited.code
    assert module_code(source.module) == SHAPES[shape]


def test_a_statement_moved_to_another_indentation_is_written_again() -> None:
    source = _source(SHAPES["plain"])
    loop = source.module.body[-1]
    assert isinstance(loop, cst.For)
    moved = loop.body.body[0]  # `loss = ...`, parsed at 4 spaces
    wrapper = cst.If(test=cst.Name("True"), body=cst.IndentedBlock(body=[moved]))
    edited = source.module.with_changes(
        body=[
            *source.module.body[:-1],
            loop.with_changes(body=loop.body.with_changes(body=[wrapper])),
        ]
    )
    assert module_code(edited) == edited.code
    assert "        loss = evaluate" in module_code(edited)


def test_an_elif_stays_an_elif() -> None:
    text = "if a:\n    x = 1\nelif b:\n    x = 2\nelse:\n    x = 3\n"
    source = _source(text)
    outer = source.module.body[0]
    assert isinstance(outer, cst.If)
    edited = source.module.with_changes(
        body=[outer.with_changes(test=cst.Name("c"))]  # the elif is the parsed node
    )
    assert module_code(edited) == edited.code == text.replace("if a", "if c")


def test_nodes_within_leave_out_nested_functions() -> None:
    source = _source(
        SHAPES["plain"]
        + "\n\ndef outer():\n    def inner():\n        return 1\n    f = lambda: 2\n    return inner\n"
    )
    outer = source.module.body[-1]
    assert isinstance(outer, cst.FunctionDef)
    laid_out = tree.nodes_within(outer, (cst.FunctionDef, cst.Lambda))
    returns = [n for n in laid_out if isinstance(n, cst.Return)]
    assert [cst.Module([]).code_for_node(r) for r in returns] == ["return inner"]
    fresh = outer.deep_clone()  # no layout holds it
    assert nodes_below(fresh) is None
    walked = tree.nodes_within(fresh, (cst.FunctionDef, cst.Lambda))
    # the same nodes (a few whitespace nodes come in another order)
    assert sorted(type(n).__name__ for n in walked) == sorted(type(n).__name__ for n in laid_out)
