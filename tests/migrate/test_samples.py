"""Our own 1.x samples (samples/legacy) against their expected rewrites
(tests/migrate/cases/_samples/<name>.<target>.py and the findings beside them; kept
under cases/ because generated code is not linted).

Regenerate after an intended change with `NC_UPDATE_CASES=1 pytest tests/migrate/test_samples.py`.
"""

from __future__ import annotations

import os

import pytest

from neural_coder.transforms.migrate_1x import migrate_source
from tests.conftest import SAMPLES

from .conftest import CASES, render_findings

FOLDER = SAMPLES / "legacy"
EXPECTED = CASES / "_samples"
UPDATE = os.environ.get("NC_UPDATE_CASES") == "1"
NAMES = sorted(p.name for p in FOLDER.glob("*.py"))


@pytest.mark.parametrize("target", ["inc", "runtime"])
@pytest.mark.parametrize("name", NAMES)
def test_sample(name: str, target: str):
    path = FOLDER / name
    result = migrate_source(path.read_text(), path, target)
    stem = name.removesuffix(".py")
    code_file = EXPECTED / f"{stem}.{target}.py"
    findings_file = EXPECTED / f"{stem}.{target}.txt"
    findings = render_findings(result.findings, FOLDER)
    if UPDATE:
        EXPECTED.mkdir(exist_ok=True)
        code_file.write_text(result.code)
        findings_file.write_text(findings)
    assert result.code == code_file.read_text()
    assert findings == findings_file.read_text()
    again = migrate_source(result.code, path, target)
    assert again.code == result.code and not again.changed
