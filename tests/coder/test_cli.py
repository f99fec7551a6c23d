"""Output modes, reports, idempotency and inspect, through the CLI."""

from __future__ import annotations

import json

from tests.conftest import run_cli, teacher_args


def test_in_place_rewrite_keeps_a_backup_and_second_run_is_a_no_op(copy_script):
    script = copy_script("one_epoch_helper.py")
    original = script.read_text()
    first = run_cli("optimize", script, "--approach", "pruning+qat")
    assert first.exit_code == 0, first.output
    assert "Transformed" in first.output
    assert script.with_name(script.name + ".bak").read_text() == original
    rewritten = script.read_text()
    assert rewritten != original
    second = run_cli("optimize", script, "--approach", "pruning+qat")
    assert second.exit_code == 0
    assert "Unchanged" in second.output and "already compressed" in second.output
    assert script.read_text() == rewritten


def test_diff_is_a_dry_run(copy_script):
    script = copy_script("step_budget_loop.py")
    original = script.read_text()
    result = run_cli("optimize", script, "--approach", "qat", "--diff")
    assert result.exit_code == 0
    assert "+    compression_manager.callbacks.on_train_begin()  # neural-coder" in result.output
    assert script.read_text() == original
    assert not script.with_name(script.name + ".bak").exists()


def test_output_path_leaves_the_input_alone(copy_script, tmp_path):
    script = copy_script("step_budget_loop.py")
    original = script.read_text()
    out = tmp_path / "out" / "compressed.py"
    result = run_cli(
        "optimize", script, "--approach", "distillation", "--teacher", "copy", "-o", out
    )
    assert result.exit_code == 0, result.output
    assert script.read_text() == original
    assert "on_after_compute_loss(inputs, logits, loss)" in out.read_text()


def test_output_path_needs_exactly_one_script(copy_script, tmp_path):
    a, b = copy_script("step_budget_loop.py"), copy_script("one_epoch_helper.py")
    result = run_cli("optimize", a, b, "--approach", "qat", "-o", tmp_path / "x.py")
    assert result.exit_code == 2


def test_json_report_lists_each_file_with_its_status(copy_script, tmp_path):
    good = copy_script("step_budget_loop.py")
    bad = tmp_path / "broken.py"
    bad.write_text("def (:\n")
    report_path = tmp_path / "report.json"
    result = run_cli("optimize", good, bad, "--approach", "pruning", "--report", report_path)
    assert result.exit_code == 2  # the worst outcome decides
    report = json.loads(report_path.read_text())
    statuses = {entry["path"].rsplit("/", 1)[-1]: entry["status"] for entry in report["files"]}
    assert statuses == {"step_budget_loop.py": "Transformed", "broken.py": "Failed"}
    assert report["summary"] == {"Transformed": 1, "Unchanged": 0, "Skipped": 0, "Failed": 1}
    transformed = next(e for e in report["files"] if e["status"] == "Transformed")
    assert any("on_after_optimizer_step" in line for line in transformed["placed"])


def test_inspect_prints_facts_with_lines(copy_script):
    result = run_cli("inspect", copy_script("one_epoch_helper.py"))
    assert result.exit_code == 0
    assert "model       line   66  SmallResidual()  -> model" in result.output
    assert "step loop   line   39  (train_one_epoch())" in result.output
    assert "run length  cfg.epochs * len(train_loader) optimizer steps" in result.output


def test_target_inc_imports_neural_compressor(copy_script):
    script = copy_script("one_epoch_helper.py")
    result = run_cli(
        "optimize",
        script,
        "--approach",
        "distillation+pruning+qat",
        "--target",
        "inc",
        *teacher_args(script.name, ["distillation"]),
    )
    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert "from neural_compressor.training import prepare_compression" in text
    assert "neural_coder" not in text
