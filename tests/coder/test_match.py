"""`neural_coder.transforms.match` against `libcst.matchers`: the same nodes found, in the same
order, for the kinds of pattern the analysis writes, over every sample script."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import libcst.matchers as lm
import pytest

from neural_coder.transforms import match as nm

SAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("samples").rglob("*.py"))


def patterns(m):  # noqa: ANN001, ANN201 - the same patterns written against either module
    return [
        m.Name(),
        m.Name("model"),
        m.Name(value=m.MatchIfTrue(lambda s: s.endswith("_"))),
        m.Call(func=m.Attribute(attr=m.Name("load_state_dict"))),
        m.Call(args=[m.Arg(value=m.Name("model")), m.ZeroOrMore()]),
        m.Call(args=[m.ZeroOrMore(), m.Arg(keyword=m.Name("lr"))]),
        m.Call(args=[]),
        m.Call(func=m.Name("print"), args=[m.Arg()]),
        m.Call(func=m.OneOf(*(m.Name(n) for n in ("eval", "train", "to")))),
        m.Call(
            func=m.Attribute(value=m.Name("model"), attr=m.OneOf(m.Name("eval"), m.Name("train")))
        ),
        m.Name("optimizer") | m.Attribute(value=m.Name("self"), attr=m.Name("optimizer")),
        m.Import() | m.ImportFrom(),
        m.Break() | m.Return(),
        m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget()])]),
        m.AssignTarget(target=m.Name("model")) | m.AnnAssign(target=m.Name("model")),
        m.Element(),
        m.For(target=m.Name()),
        m.AugAssign(),
        m.Subscript(value=m.Name()),
        m.BinaryOperation(operator=m.Modulo()),
        m.ImportFrom(module=m.Attribute(), relative=[]),
        m.Return(value=None),
        m.FunctionDef(asynchronous=None),
        m.If(test=m.Comparison()),
    ]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_findall_and_matches_agree_with_libcst(path: Path) -> None:
    module = cst.parse_module(path.read_text(encoding="utf-8"))
    nodes = [module, *lm.findall(module, lm.DoNotCare())][:4000]  # type: ignore[arg-type]
    for ours, theirs in zip(patterns(nm), patterns(lm), strict=True):
        found = nm.findall(module, ours)
        assert [id(n) for n in found] == [id(n) for n in lm.findall(module, theirs)], ours
        assert [nm.matches(n, ours) for n in nodes] == [lm.matches(n, theirs) for n in nodes], ours


def test_some_patterns_do_match() -> None:
    module = cst.parse_module("import os\nmodel = Net()\nmodel.load_state_dict(sd, strict=False)\n")
    assert len(nm.findall(module, nm.Call(func=nm.Attribute(attr=nm.Name("load_state_dict"))))) == 1
    assert (
        len(nm.findall(module, nm.Call(args=[nm.Arg(value=nm.Name("sd")), nm.ZeroOrMore()]))) == 1
    )
    assert not nm.findall(module, nm.Call(args=[nm.Arg(value=nm.Name("sd"))]))
    assert nm.findall(module, nm.Import() | nm.ImportFrom())
    assert not nm.matches(cst.MaybeSentinel.DEFAULT, nm.Name())


def test_bad_patterns_are_refused() -> None:
    with pytest.raises(TypeError):
        nm.Name(nonsense=1)
    with pytest.raises(AttributeError):
        nm.NoSuchNode()  # noqa: B018
