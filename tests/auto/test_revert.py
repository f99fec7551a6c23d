"""`revert`: revert(optimize(x)) == x byte for byte, and refusals that leave files alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import RevertRefused, revert_source
from tests.coder.test_golden import CASES, golden_path
from tests.conftest import SAMPLES, run_cli, script_path


@pytest.mark.parametrize(("name", "approach", "target"), CASES)
def test_revert_of_every_golden_rewrite_gives_the_original_back(name, approach, target):
    original = script_path(name).read_bytes().decode("utf-8")
    rewritten = golden_path(name, approach, target).read_text()
    reverted, report = revert_source(Path(name), rewritten)
    assert reverted == original
    assert report.status is Status.TRANSFORMED


@pytest.mark.parametrize(
    ("name", "approach", "config"),
    [
        (
            "one_epoch_helper.py",
            "pruning+qat",
            {"pruning": {"target_sparsity": 0.7, "pattern": "1x1", "start_step": 2, "end_step": 9}},
        ),
        (
            "step_budget_loop.py",
            "distillation",
            {"distillation": {"teacher": "teacher.pt", "temperature": 2.0, "loss_weights": [0.3, 0.7]}},
        ),
        (
            "ptq_cnn_eval.py",
            "ptq-static",
            {"ptq": {"criterion": "absolute", "tolerable_loss": 0.5, "max_trials": 7,
                     "calibration_sampling_size": 64}},
        ),
        ("ptq_cnn_eval.py", "benchmark", {"benchmark": {"warmup": 2, "iteration": 20}}),
        ("hf_inference.py", "bf16", {}),
    ],
)  # fmt: skip
def test_revert_reads_non_default_settings_back(name, approach, config):
    original = (SAMPLES / name).read_text()
    options = build_options(approach, None, config, {})
    rewritten, _ = rewrite_source(Path(name), original, options)
    assert rewritten != original
    assert revert_source(Path(name), rewritten)[0] == original


def test_an_edited_inserted_line_is_refused_and_listed():
    original = (SAMPLES / "one_epoch_helper.py").read_text()
    rewritten, _ = rewrite_source(
        Path("x.py"), original, build_options("pruning+qat", None, {}, {})
    )
    lines = rewritten.splitlines(keepends=True)
    number = next(
        i for i, line in enumerate(lines) if "on_before_optimizer_step()  # neural-coder" in line
    )
    lines[number] = lines[number].replace(
        "on_before_optimizer_step()", "on_before_optimizer_step(); clip(model)"
    )
    with pytest.raises(RevertRefused) as refused:
        revert_source(Path("x.py"), "".join(lines))
    message = refused.value.render()
    assert f"line {number + 1}:" in message and "clip(model)" in message
    assert "nothing was reverted" in message


def test_a_person_s_own_edit_elsewhere_is_kept():
    original = (SAMPLES / "ptq_cnn_eval.py").read_text()
    options = build_options("ptq-dynamic", None, {}, {})
    rewritten, _ = rewrite_source(Path("x.py"), original, options)
    edited = rewritten.replace('default="val.pt"', 'default="val2.pt"')
    assert edited != rewritten
    reverted, _ = revert_source(Path("x.py"), edited)
    assert reverted == original.replace('default="val.pt"', 'default="val2.pt"')


def test_cli_revert_writes_the_original_with_a_backup_and_refuses_edits(tmp_path):
    original = (SAMPLES / "hf_inference.py").read_text()
    script = tmp_path / "infer.py"
    script.write_text(original)
    assert run_cli("optimize", script, "--approach", "ptq-dynamic", "--no-backup").exit_code == 0
    optimized = script.read_text()

    result = run_cli("revert", script, "--diff")
    assert result.exit_code == 0 and "-    quantized_model = quantization.fit(" in result.output
    assert script.read_text() == optimized

    result = run_cli("revert", script)
    assert result.exit_code == 0, result.output
    assert script.read_bytes() == original.encode()
    assert (tmp_path / "infer.py.bak").read_text() == optimized
    assert "nothing to revert" in run_cli("revert", script).output

    edited = optimized.replace("model = quantized_model if", "model = quantized_model or 1 if")
    script.write_text(edited)
    result = run_cli("revert", script)
    assert result.exit_code == 1
    assert "quantized_model or 1" in result.output
    assert script.read_text() == edited


def test_optimize_with_another_approach_points_to_revert(tmp_path):
    script = tmp_path / "infer.py"
    script.write_text((SAMPLES / "hf_inference.py").read_text())
    assert run_cli("optimize", script, "--approach", "ptq-dynamic").exit_code == 0
    result = run_cli("optimize", script, "--approach", "bf16")
    assert result.exit_code == 1
    assert f"neural-coder revert {script}" in result.output
