"""`neural-coder migrate` through the CLI: folders, output modes, reports, no-ops."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ACCEPTANCE, run_cli

LEGACY = ACCEPTANCE / "legacy"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    if not LEGACY.is_dir():
        pytest.skip("shared/acceptance/legacy is not beside this checkout")
    target = tmp_path / "legacy"
    shutil.copytree(LEGACY, target)
    return target


def test_a_folder_migrates_file_by_file_and_a_second_run_is_a_no_op(legacy, tmp_path):
    report_path = tmp_path / "report.json"
    first = run_cli("migrate", legacy, "--report", report_path)
    assert first.exit_code == 0, first.output
    report = json.loads(report_path.read_text())
    scripts = sorted(p.name for p in legacy.glob("*.py"))
    assert sorted(Path(e["path"]).name for e in report["files"]) == scripts
    assert report["summary"]["Transformed"] == len(scripts)
    for script in legacy.glob("*.py"):
        text = script.read_text()
        assert "neural_compressor.experimental" not in text
        compile(text, str(script), "exec")
        assert script.with_name(script.name + ".bak").exists()
    second = run_cli("migrate", legacy)
    assert second.exit_code == 0
    assert second.output.count("Unchanged") == len(scripts)


def test_diff_writes_nothing(legacy):
    before = {p: p.read_text() for p in legacy.glob("*.py")}
    result = run_cli("migrate", legacy, "--diff")
    assert result.exit_code == 0
    assert "+from neural_compressor" in result.output
    assert {p: p.read_text() for p in legacy.glob("*.py")} == before


def test_a_missing_yaml_fails_and_names_the_path(tmp_path):
    script = tmp_path / "quant.py"
    script.write_text(
        "from neural_compressor.experimental import Quantization, common\n"
        "quantizer = Quantization('missing.yaml')\n"
        "quantizer.model = common.Model(model)\n"
        "q_model = quantizer.fit()\n"
    )
    original = script.read_text()
    result = run_cli("migrate", script)
    assert result.exit_code != 0
    assert "missing.yaml" in result.output
    assert script.read_text() == original


def test_a_script_without_the_1x_api_is_unchanged(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text("import torch\nprint(torch.ones(1))\n")
    result = run_cli("migrate", script)
    assert result.exit_code == 0
    assert "Unchanged" in result.output and "nothing to do" in result.output
