"""Before/after tests of the edit transformer itself, and its no-op."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
import pytest

from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    AddParameter,
    InsertStatements,
    ReplaceExpression,
)
from neural_coder.transforms.hooks import apply_edits

SOURCE = """import torch


def step(model, batch, lr=0.1):
    for x in batch:
        y = model(x)
        if y is None:
            continue
    return y


step(net, data)
"""


def find(module: cst.Module, matcher):
    return m.findall(module, matcher)[0]


def test_no_edits_is_byte_for_byte_identity():
    module = cst.parse_module(SOURCE)
    assert apply_edits(module, []).code == SOURCE


def test_insert_around_statement_and_in_loop_body():
    module = cst.parse_module(SOURCE)
    loop = find(module, m.For())
    statement = find(module, m.SimpleStatementLine(body=[m.Assign()]))
    edits = [
        InsertStatements(statement, "before", "a = 1\n"),
        InsertStatements(statement, "after", "b = 2\n"),
        InsertStatements(loop, "body_start", "start()\n"),
        InsertStatements(loop, "body_end", "end()\n"),
    ]
    out = apply_edits(module, edits).code
    assert out == SOURCE.replace(
        "    for x in batch:\n        y = model(x)\n        if y is None:\n            continue\n",
        "    for x in batch:\n"
        "        start()  # neural-coder\n"
        "        a = 1  # neural-coder\n"
        "        y = model(x)\n"
        "        b = 2  # neural-coder\n"
        "        if y is None:\n"
        "            continue\n"
        "        end()  # neural-coder\n",
    )


def test_body_end_goes_before_a_final_continue():
    source = "for x in y:\n    f(x)\n    continue\n"
    module = cst.parse_module(source)
    out = apply_edits(module, [InsertStatements(find(module, m.For()), "body_end", "g()\n")]).code
    assert out == "for x in y:\n    f(x)\n    g()  # neural-coder\n    continue\n"


def test_multiline_snippet_is_indented_to_its_block():
    source = "def f():\n    x = 1\n"
    module = cst.parse_module(source)
    snippet = "cm = prepare(\n    model,\n    [A(), B()],\n)\n"
    out = apply_edits(
        module, [InsertStatements(find(module, m.SimpleStatementLine()), "after", snippet)]
    ).code
    assert (
        out
        == "def f():\n    x = 1\n    cm = prepare(\n        model,\n        [A(), B()],\n    )  # neural-coder\n"
    )
    compile(out, "<test>", "exec")


def test_parameter_and_keyword_argument():
    module = cst.parse_module(SOURCE)
    fn = find(module, m.FunctionDef())
    call = find(module, m.Call(func=m.Name("step")))
    out = apply_edits(
        module, [AddParameter(fn, "cm"), AddKeywordArgument(call, "cm", "manager")]
    ).code
    # a parameter after one with a default gets a default too
    assert "def step(model, batch, lr=0.1, cm=None):" in out
    assert "step(net, data, cm=manager)" in out


def test_parameter_after_star_args_is_keyword_only():
    module = cst.parse_module("def f(a, *rest, **kw):\n    pass\n")
    out = apply_edits(module, [AddParameter(find(module, m.FunctionDef()), "cm")]).code
    assert out.startswith("def f(a, *rest, cm, **kw):")


def test_imports_are_added_once_in_the_import_block():
    module = cst.parse_module(SOURCE)
    edits = [
        AddImport("copy"),
        AddImport("neural_coder.runtime.training", "prepare_compression"),
        AddImport("torch"),
    ]
    out = apply_edits(module, edits).code
    assert out.count("import torch\n") == 1
    assert out.startswith(
        "import torch\nimport copy\nfrom neural_coder.runtime.training import prepare_compression\n"
    )


def test_an_edit_that_finds_no_place_is_an_error():
    module = cst.parse_module(SOURCE)
    stray = cst.parse_statement("x = 1\n")
    with pytest.raises(ValueError, match="found no place"):
        apply_edits(module, [InsertStatements(stray, "before", "y = 2\n")])


def test_replace_expression_keeps_the_rest_of_the_line():
    source = "for x, y in data:\n    loss = criterion(model(x), y)  # mine\n"
    module = cst.parse_module(source)
    call = find(module, m.Call(func=m.Name("model")))
    statement = find(module, m.SimpleStatementLine())
    out = apply_edits(
        module,
        [InsertStatements(statement, "before", "out = model(x)\n"), ReplaceExpression(call, "out")],
    ).code
    assert out == (
        "for x, y in data:\n"
        "    out = model(x)  # neural-coder\n"
        "    loss = criterion(out, y)  # mine\n"
    )
