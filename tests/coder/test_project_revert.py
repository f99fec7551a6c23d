"""`revert` on a project: optimize on the entry script edits modules of its project too
(hooks in engine.py, a `tensors_only` wrap in a helper module); reverting the entry gives
every file back byte for byte, proven by re-running the project rewrite, all or none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli

ROUND_TRIPS = [
    ("engine_project", "main.py", "qat"),
    ("engine_project", "main.py", "pruning+qat"),
    ("engine_project", "main.py", "distillation"),
    ("engine_project", "main.py", "ptq-dynamic"),  # the entry alone is rewritten
    ("kd_zoo_project", "train_student.py", "pruning"),
    ("kd_zoo_project", "train_student.py", "distillation"),
    ("package_layout", "train.py", "qat"),
    ("package_layout", "train.py", "pruning"),
    ("scripts_layout", "tools/train.py", "pruning"),
    ("scripts_layout", "tools/train.py", "qat"),
    ("trainer_class_project", "main.py", "qat"),  # only the module is rewritten
    ("trainer_class_project", "main.py", "ptq-static"),
    ("qa_trainer_project", "run_qa.py", "pruning"),
    ("ema_teacher_project", "main_selfsup.py", "pruning"),
]

SAVE_HELPER = """import safetensors.torch


def save_checkpoint(model, path):
    safetensors.torch.save_file(model.state_dict(), path)
"""

SAVING_SCRIPT = """import torch
import torch.nn.functional as F

from utils import save_checkpoint

model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    save_checkpoint(model, "last.safetensors")
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.py"))}


def optimized_copy(tmp_path: Path, name: str, entry: str, approach: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(SAMPLES / name, folder)
    extra = ["--teacher", "copy"] if "distillation" in approach else []
    result = run_cli("optimize", folder / entry, "--approach", approach, "--no-backup", *extra)
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.parametrize(("name", "entry", "approach"), ROUND_TRIPS)
def test_reverting_the_entry_gives_every_file_of_the_project_back(tmp_path, name, entry, approach):
    folder = optimized_copy(tmp_path, name, entry, approach)
    optimized = snapshot(folder)
    rewritten = {p for p, text in snapshot(SAMPLES / name).items() if optimized[p] != text}
    assert rewritten

    result = run_cli("revert", folder / entry)
    assert result.exit_code == 0, result.output
    assert snapshot(folder) == snapshot(SAMPLES / name)
    backups = {str(p.relative_to(folder))[: -len(".bak")] for p in folder.rglob("*.py.bak")}
    assert backups == rewritten
    for path in rewritten:
        assert (folder / (path + ".bak")).read_bytes() == optimized[path]


def test_diff_prints_every_file_and_the_report_lists_them(tmp_path):
    folder = optimized_copy(tmp_path, "engine_project", "main.py", "qat")
    optimized = snapshot(folder)
    report = tmp_path / "report.json"
    result = run_cli("revert", folder / "main.py", "--diff", "--report", report)
    assert result.exit_code == 0, result.output
    headers = [line for line in result.output.splitlines() if line.startswith("--- ")]
    assert [h.rsplit("/", 1)[-1] for h in headers] == ["main.py", "engine.py"]
    assert (
        "-        compression_manager.callbacks.on_step_begin(step)  # neural-coder"
        in result.output
    )
    assert snapshot(folder) == optimized and not list(folder.rglob("*.bak"))
    (entry,) = json.loads(report.read_text())["files"]
    assert entry["status"] == "Transformed"
    assert set(entry["files_written"]) == {str(folder / "main.py"), str(folder / "engine.py")}
    assert "inserted in main.py, engine.py" in entry["message"]

    result = run_cli("revert", folder / "main.py", "--no-backup")
    assert result.exit_code == 0 and not list(folder.rglob("*.bak"))
    assert snapshot(folder) == snapshot(SAMPLES / "engine_project")


def test_an_edited_line_in_a_module_refuses_the_whole_project_naming_file_and_line(tmp_path):
    folder = optimized_copy(tmp_path, "scripts_layout", "tools/train.py", "qat")
    engine = folder / "lightnet" / "engine.py"
    lines = engine.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "on_step_end()  # neural-coder" in line)
    lines[number] = lines[number].replace("on_step_end()", "on_step_end(); log(step)")
    engine.write_text("".join(lines))
    edited = snapshot(folder)

    result = run_cli("revert", folder / "tools" / "train.py")
    assert result.exit_code == 1
    assert f"{engine}:{number + 1}:" in result.output
    assert f"../lightnet/engine.py line {number + 1}: " in result.output
    assert "log(step)" in result.output and "no file of the project was reverted" in result.output
    assert snapshot(folder) == edited and not list(folder.rglob("*.bak"))


def test_a_project_optimize_did_not_rewrite_is_left_alone(tmp_path):
    folder = tmp_path / "engine_project"
    shutil.copytree(SAMPLES / "engine_project", folder)
    result = run_cli("revert", folder / "main.py")
    assert result.exit_code == 0 and "nothing to revert" in result.output
    assert snapshot(folder) == snapshot(SAMPLES / "engine_project")
    assert not list(folder.rglob("*.bak"))


def test_a_module_reverted_alone_points_at_its_entry_script(tmp_path):
    folder = optimized_copy(tmp_path, "package_layout", "train.py", "qat")
    optimized = snapshot(folder)
    module = folder / "utils" / "train_utils.py"
    result = run_cli("revert", module)
    assert result.exit_code == 1
    assert f"neural-coder revert {folder / 'train.py'}" in result.output
    assert snapshot(folder) == optimized

    result = run_cli("revert", folder)  # the entry, then the module: nothing left in it
    assert result.exit_code == 0 and "Failed" not in result.output, result.output
    assert snapshot(folder) == snapshot(SAMPLES / "package_layout")


def test_another_script_of_the_project_points_at_the_one_optimize_ran_on(tmp_path):
    folder = optimized_copy(tmp_path, "scripts_layout", "tools/train.py", "pruning")
    optimized = snapshot(folder)
    result = run_cli("revert", folder / "tools" / "evaluate.py")
    assert result.exit_code == 0, result.output
    assert f"`neural-coder revert {folder / 'tools' / 'train.py'}`" in result.output
    assert snapshot(folder) == optimized

    # the folder: the module (met first) is left to the entry script, which reverts both
    result = run_cli("revert", folder)
    assert result.exit_code == 0, result.output
    assert f"Skipped: {folder / 'lightnet' / 'engine.py'}" in result.output
    assert snapshot(folder) == snapshot(SAMPLES / "scripts_layout")


@pytest.fixture
def saving_project(tmp_path: Path) -> Path:
    folder = tmp_path / "saving"
    folder.mkdir()
    (folder / "utils.py").write_text(SAVE_HELPER)
    (folder / "main.py").write_text(SAVING_SCRIPT)
    result = run_cli("optimize", folder / "main.py", "--approach", "qat", "--no-backup")
    assert result.exit_code == 0, result.output
    return folder


def test_in_line_wraps_in_a_helper_module_are_reverted_with_the_entry(saving_project):
    helper = (saving_project / "utils.py").read_text()
    assert "save_file(tensors_only(model.state_dict()), path)" in helper
    assert "# neural-coder" not in helper

    result = run_cli("revert", saving_project / "utils.py")
    assert result.exit_code == 1
    assert "no code inserted" not in result.output
    assert f"neural-coder revert {saving_project / 'main.py'}" in result.output
    assert (saving_project / "utils.py").read_text() == helper

    result = run_cli("revert", saving_project / "main.py")
    assert result.exit_code == 0, result.output
    assert (saving_project / "utils.py").read_text() == SAVE_HELPER
    assert (saving_project / "main.py").read_text() == SAVING_SCRIPT


def test_a_helper_module_whose_entry_is_not_found_is_refused_not_called_clean(
    saving_project, tmp_path
):
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(saving_project / "utils.py", alone / "utils.py")
    result = run_cli("revert", alone / "utils.py")
    assert result.exit_code == 1
    assert "no code inserted" not in result.output
    assert f"{alone / 'utils.py'}:2: " in result.output  # the runtime import
    assert "the project's entry script" in result.output
    assert (alone / "utils.py").read_text() == (saving_project / "utils.py").read_text()


THREADED = {
    "engine.py": """import torch.nn.functional as F


def train_one_epoch(model, loader, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
    "middle.py": """from engine import train_one_epoch


def run_epoch(model, loader, optimizer):
    train_one_epoch(model, loader, optimizer)
""",
    "loops.py": """from middle import run_epoch


def fit(model, loader, optimizer, epochs):
    for epoch in range(epochs):
        run_epoch(model, loader, optimizer)
""",
    "main.py": """import torch

from loops import fit

model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
fit(model, loader, optimizer, 2)
torch.save(model.state_dict(), "m.pt")
""",
}


def test_a_module_the_manager_is_only_threaded_through_is_reverted_too(tmp_path):
    for name, text in THREADED.items():
        (tmp_path / name).write_text(text)
    result = run_cli("optimize", tmp_path / "main.py", "--approach", "qat", "--no-backup")
    assert result.exit_code == 0, result.output
    middle = (tmp_path / "middle.py").read_text()
    assert "compression_manager" in middle and "# neural-coder" not in middle
    result = run_cli("revert", tmp_path / "main.py")
    assert result.exit_code == 0, result.output
    assert {name: (tmp_path / name).read_text() for name in THREADED} == THREADED
