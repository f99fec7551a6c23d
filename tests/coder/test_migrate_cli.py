"""`neural-coder migrate` through the CLI: folders, output modes, reports, no-ops."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli

LEGACY = SAMPLES / "legacy"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """Our own 1.x samples that migrate fully (legacy_todos.py keeps 1.x code on purpose)."""
    target = tmp_path / "legacy"
    shutil.copytree(LEGACY, target)
    (target / "legacy_todos.py").unlink()
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


READ_AFTER_FIT = """import torch
from neural_compressor.experimental import Quantization, common
model = torch.nn.Linear(4, 2)
quantizer = Quantization("conf.yaml")
quantizer.model = common.Model(model)
quantizer.eval_func = lambda m: 1.0
q_model = quantizer.fit()
if q_model is None:
    print("tuning failed; fp32 is", quantizer.model)
"""


def test_a_component_read_after_fit_is_migrated_and_the_read_kept_with_a_todo(tmp_path):
    """`quantizer.model` after fit reads the model the quantizer was given (as in 1.x):
    the component migrates, the read gets that model and a TODO; a second run says so."""
    (tmp_path / "conf.yaml").write_text("model: {name: m, framework: pytorch_fx}\n")
    script = tmp_path / "script.py"
    script.write_text(READ_AFTER_FIT)
    first = run_cli("migrate", script, "--no-backup")
    assert first.exit_code == 0, first.output
    assert "Transformed" in first.output
    text = script.read_text()
    assert "Quantization(" not in text and "quantization.fit(model, " in text
    assert 'print("tuning failed; fp32 is", model)' in text
    assert "# TODO(neural-coder): `quantizer.model` now reads `model`" in text
    second = run_cli("migrate", script)
    assert second.exit_code == 0
    assert "Unchanged" in second.output
    assert "TODO(s) from an earlier run are still in the code" in second.output


def test_a_script_left_as_1x_is_not_reported_transformed(tmp_path):
    """`Quantization(args.config)` without a default and two yamls that fit: nothing can be
    migrated, so the run fails, names why, and writes nothing."""
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("quantization: {approach: post_training_dynamic_quant}\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import argparse\n"
        "from neural_compressor.experimental import Quantization, common\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--config', required=True)\n"
        "args = parser.parse_args()\n"
        "quantizer = Quantization(args.config)\n"
        "quantizer.model = common.Model(model)\n"
        "q_model = quantizer.fit()\n"
    )
    original = script.read_text()
    result = run_cli("migrate", script)
    assert result.exit_code == 1
    assert "Failed" in result.output and "nothing could be migrated" in result.output
    assert f"{script}:6: `quantizer` is built from `args.config`" in result.output
    assert script.read_text() == original and not script.with_name("script.py.bak").exists()
