"""One set of conventions for every command (issue 17) and failures a person can cause that
end as a message, an exit code and an untouched file (issue 16)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from neural_coder import api
from neural_coder.example_config import example_config
from neural_coder.options import build_options, load_config_file
from tests.conftest import ROOT, SAMPLES, run_cli

TRAINING = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(4)]
for epoch in range(2):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
"""

LEGACY = """from neural_compressor.experimental import Quantization, common
quantizer = Quantization("{yaml}")
quantizer.model = common.Model(model)
q_model = quantizer.fit()
"""


def write(folder: Path, text: str, name: str = "train.py") -> Path:
    path = folder / name
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["optimize", "--approach", "qat"],
        ["migrate"],
        ["inspect"],
    ],
)
def test_a_missing_path_is_a_usage_error_for_every_command(tmp_path, args):
    result = run_cli(*args, tmp_path / "nope.py")
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_migrate_refusal_exits_1_like_an_optimize_refusal(tmp_path):
    script = write(tmp_path, LEGACY.format(yaml="gone.yaml"))
    assert run_cli("migrate", script).exit_code == 1
    refused = write(tmp_path, "import torch\nprint(torch.ones(1))\n", "plain.py")
    assert run_cli("optimize", refused, "--approach", "pruning").exit_code == 1


def test_diff_is_a_dry_run_that_says_would_transform_with_plain_headers(tmp_path, monkeypatch):
    script = write(tmp_path, TRAINING)
    monkeypatch.chdir(tmp_path)
    result = run_cli("optimize", script, "--approach", "pruning", "--diff")
    assert result.exit_code == 0
    assert "Would transform:" in result.output and "Transformed" not in result.output
    assert "--- a/train.py" in result.output and "+++ b/train.py" in result.output
    assert script.read_text() == TRAINING
    elsewhere = run_cli("optimize", script, "--approach", "pruning", "--diff")
    assert "a//" not in elsewhere.output


def test_inspect_and_optimize_take_several_files_and_folders(tmp_path):
    (tmp_path / "pkg").mkdir()
    one = write(tmp_path, TRAINING, "one.py")
    two = write(tmp_path / "pkg", TRAINING, "two.py")
    result = run_cli("inspect", one, tmp_path / "pkg")
    assert result.exit_code == 0
    assert str(one) in result.output and str(two) in result.output
    assert result.output.count("optimizer step") == 2
    optimized = run_cli("optimize", tmp_path, "--approach", "pruning")
    assert optimized.exit_code == 0 and optimized.output.count("Transformed") == 2


def test_inspect_reports_a_file_that_does_not_parse_and_goes_on(tmp_path):
    bad = write(tmp_path, "def f(:\n", "bad.py")
    good = write(tmp_path, TRAINING)
    result = run_cli("inspect", bad, good)
    assert result.exit_code == 2
    assert f"{bad}:1:" in result.output and str(good) in result.output


def test_python_dash_m_and_the_help_examples():
    result = subprocess.run(
        [sys.executable, "-m", "neural_coder", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.count("  neural-coder ") >= 3 and "Exit codes" in result.stdout


def test_the_example_config_ships_loads_and_holds_every_default(tmp_path):
    printed = run_cli("example-config").output
    assert printed == example_config()
    assert (ROOT / "docs" / "config-example.yaml").read_text() == printed
    path = write(tmp_path, printed, "conf.yaml")
    options = build_options(None, None, load_config_file(path), {})
    assert options == build_options("pruning+qat", "runtime", {}, {})


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("distillation:\n  loss_types: [1, 2]\n", "loss_types must be two names"),
        ("distillation:\n  loss_weights: '0.5,0.5'\n", "loss_weights must be a list"),
        ("pruning:\n  start_step: true\n", "start_step must be an integer"),
        ("pruning:\n  pattern: '0x1'\n", "block sizes must be >= 1"),
    ],
)
def test_config_values_of_the_wrong_type_are_usage_errors(tmp_path, yaml_text, message):
    config = write(tmp_path, "approach: distillation+pruning\n" + yaml_text, "conf.yaml")
    script = write(tmp_path, TRAINING)
    result = run_cli("optimize", script, "--config", config)
    assert result.exit_code == 2 and message in result.output
    assert script.read_text() == TRAINING


def test_a_pattern_flag_with_a_zero_block_is_refused(tmp_path):
    script = write(tmp_path, TRAINING)
    result = run_cli("optimize", script, "--approach", "pruning", "--pattern", "0x1")
    assert result.exit_code == 2 and "block sizes must be >= 1" in result.output


def test_non_utf8_config_and_conf_yaml_are_messages(tmp_path):
    config = tmp_path / "conf.yaml"
    config.write_bytes(b"approach: pruning\n# caf\xe9\n")
    script = write(tmp_path, TRAINING)
    result = run_cli("optimize", script, "--config", config)
    assert result.exit_code == 2 and "not UTF-8" in result.output
    legacy = write(tmp_path, LEGACY.format(yaml="conf.yaml"), "legacy.py")
    migrated = run_cli("migrate", legacy)
    assert migrated.exit_code == 1 and "not UTF-8" in migrated.output


def test_an_unexpected_exception_is_an_internal_error_naming_the_file(tmp_path, monkeypatch):
    script = write(tmp_path, TRAINING)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "rewrite_source", broken)
    result = run_cli("optimize", script, "--approach", "pruning")
    assert result.exit_code == 1
    assert f"{script}: internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output
    verbose = run_cli("optimize", script, "--approach", "pruning", "-v")
    assert "Traceback" in verbose.output
    assert script.read_text() == TRAINING and not script.with_suffix(".py.bak").exists()


@pytest.mark.parametrize("backup", [True, False])
def test_a_folder_that_cannot_be_written_is_a_message_and_loses_nothing(
    tmp_path, monkeypatch, backup
):
    script = write(tmp_path, TRAINING)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    args = ["optimize", script, "--approach", "pruning"] + ([] if backup else ["--no-backup"])
    result = run_cli(*args)
    assert result.exit_code == 1
    assert "cannot write the result: Permission denied" in result.output
    assert script.read_text() == TRAINING
    assert not script.with_name("train.py.bak").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path):
    script = write(tmp_path, TRAINING)
    result = run_cli("optimize", script, "--approach", "pruning", "-o", script / "out.py")
    assert result.exit_code == 1 and "is not a folder" in result.output


def test_a_second_run_on_a_file_being_rewritten_fails_at_once(tmp_path):
    import fcntl

    script = write(tmp_path, TRAINING)
    with script.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        result = run_cli("optimize", script, "--approach", "pruning")
    assert result.exit_code == 1 and "another neural-coder run" in result.output
    assert script.read_text() == TRAINING
    assert run_cli("optimize", script, "--approach", "pruning").exit_code == 0


def test_form_feeds_in_indentation_are_rewritten_and_the_result_runs(tmp_path):
    text = TRAINING.replace("\n    for x", "\n\x0c\tfor x").replace("\n        ", "\n\x0c\t\t")
    compile(text, "ff", "exec")
    script = write(tmp_path, text)
    result = run_cli("optimize", script, "--approach", "pruning")
    assert result.exit_code == 0, result.output
    rewritten = script.read_text()
    assert "\x0c\t\tloss.backward()" in rewritten  # the user's bytes are kept
    assert run_cli("optimize", script, "--approach", "pruning").output.startswith("Unchanged")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    legacy = write(
        tmp_path,
        "from neural_compressor.experimental import Quantization, common\n"
        "def main(model):\n\x0c\tquantizer = Quantization('q.yaml')\n"
        "\x0c\tquantizer.model = common.Model(model)\n\x0c\treturn quantizer.fit()\n",
        "legacy.py",
    )
    write(tmp_path, "model: {name: m, framework: pytorch_fx}\nquantization: {approach: post_training_dynamic_quant}\n", "q.yaml")
    migrated = run_cli("migrate", legacy)
    assert migrated.exit_code == 0, migrated.output
    compile(legacy.read_text(), "legacy", "exec")


def test_an_edited_call_site_is_formatted_to_the_line_length(tmp_path):
    script = write(tmp_path, (SAMPLES / "epoch_fn_style.py").read_text())
    assert run_cli("optimize", script, "--approach", "pruning").exit_code == 0
    lines = script.read_text().splitlines()
    assert all(len(line) <= 88 for line in lines if "compression_manager" in line)
    assert "            compression_manager=compression_manager," in lines
