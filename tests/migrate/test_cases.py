"""Before/after pairs: every folder under cases/ holds a 1.x `before.py` (and the yaml
files it names) and the expected `after.<target>.py` and `findings.<target>.txt`.

Regenerate the expectations after an intended change with
`NC_UPDATE_CASES=1 pytest tests/migrate/test_cases.py`, then read the diff.
"""

from __future__ import annotations

import functools
import os

import pytest

from neural_coder.transforms.migrate_1x import migrate_source

from .conftest import CASES, render_findings

UPDATE = os.environ.get("NC_UPDATE_CASES") == "1"
FOLDERS = [p for p in CASES.iterdir() if p.is_dir() and not p.name.startswith("_")]
PAIRS = sorted(
    (case.name, expected.name.split(".")[1])
    for case in FOLDERS
    for expected in case.glob("after.*.py")
)


@functools.cache
def migrated(case: str, target: str):
    folder = CASES / case
    return migrate_source((folder / "before.py").read_text(), folder / "before.py", target)


def test_every_case_has_an_expectation():
    cases = {p.name for p in FOLDERS}
    assert cases and cases == {name for name, _ in PAIRS}


@pytest.mark.parametrize(("case", "target"), PAIRS)
def test_case(case: str, target: str):
    folder = CASES / case
    before = (folder / "before.py").read_text()
    result = migrated(case, target)
    expected_code = folder / f"after.{target}.py"
    expected_findings = folder / f"findings.{target}.txt"
    findings = render_findings(result.findings, folder)
    if UPDATE:
        expected_code.write_text(result.code)
        expected_findings.write_text(findings)
    assert result.code == expected_code.read_text()
    assert findings == (expected_findings.read_text() if expected_findings.exists() else "")
    assert result.changed == (result.code != before)
    compile(result.code, str(expected_code), "exec")


@pytest.mark.parametrize(("case", "target"), PAIRS)
def test_second_run_is_a_no_op(case: str, target: str):
    folder = CASES / case
    once = migrated(case, target)
    twice = migrate_source(once.code, folder / "before.py", target)
    assert twice.code == once.code
    assert not twice.changed
    assert [f for f in twice.findings if f.kind == "TODO"] == []


@pytest.mark.parametrize(("case", "target"), PAIRS)
def test_every_todo_is_a_comment_at_its_line(case: str, target: str):
    result = migrated(case, target)
    lines = result.code.splitlines()
    for finding in result.todos:
        assert lines[finding.line - 1].strip() == f"# TODO(neural-coder): {finding.message}"
