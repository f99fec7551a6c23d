"""The model a teacher-student project trains is the one compressed, run on tiny
synthetic data: the student of a self-distillation project with an EMA teacher gets
sparse while the teacher does not; in a distillation zoo project with loss modules and
a connector warm-up, the student the loop takes out of a module list is pruned, handed
down as an argument it is quantized (4 layers, the teacher has 6), and the script's own
frozen teacher teaches it."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.coder.test_model_choice import explicit_student
from tests.conftest import SAMPLES, run_cli
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e


def rewrite_project_and_run(
    tmp_path: Path,
    project: str,
    entry: str,
    approach: str,
    edit: Callable[[Path], None] | None = None,
) -> dict:
    folder = tmp_path / project
    shutil.copytree(SAMPLES / project, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if edit is not None:
        edit(folder)
    if project == "kd_zoo_project":  # the trained teacher the script loads
        sys.path.insert(0, str(folder))
        try:
            models = importlib.import_module("models")
            torch.manual_seed(1)
            teacher = models.model_dict["resnet14"](num_classes=10)
            torch.save(teacher.state_dict(), folder / "resnet14_teacher.pth")
        finally:
            sys.path.remove(str(folder))
            sys.modules.pop("models", None)
    result = run_cli("optimize", folder / entry, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    summary = run_script(folder / entry)[1]
    assert summary, "the rewritten script wrote no compression summary"
    return summary


def zeros(state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Zero weights of the conv / linear layers, and their number."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() > 1]
    return sum(int((w == 0).sum()) for w in weights), sum(w.numel() for w in weights)


def test_the_student_is_pruned_and_its_ema_teacher_is_not(tmp_path):
    summary = rewrite_project_and_run(tmp_path, "ema_teacher_project", "main_selfsup.py", "pruning")
    assert summary["pruning_target_reached"] and summary["pruning_steps_seen"] > 0
    checkpoint = torch.load(tmp_path / "ema_teacher_project" / "checkpoint.pth", weights_only=True)
    # the student saved in the last epoch holds the pruned weights; the teacher, an
    # average of the student's weights, is never masked
    assert zeros(checkpoint["student"])[0] >= 0.9 * summary["weights_zero"] > 0
    zero, total = zeros(checkpoint["teacher"])
    assert zero < 0.01 * total


def test_the_student_of_a_distillation_zoo_is_pruned(tmp_path):
    """The loop takes the student out of module_list: the model main() appended first."""
    summary = rewrite_project_and_run(tmp_path, "kd_zoo_project", "train_student.py", "pruning")
    assert summary["pruning_target_reached"]
    saved = torch.load(tmp_path / "kd_zoo_project" / "resnet8_last.pth", weights_only=True)
    assert zeros(saved["model"])[0] >= 0.9 * summary["weights_zero"] > 0


def test_the_student_handed_down_as_an_argument_is_quantized(tmp_path):
    """The way out of the QAT refusal: the student passed to train_distill() itself."""
    summary = rewrite_project_and_run(
        tmp_path, "kd_zoo_project", "train_student.py", "qat", explicit_student
    )
    assert summary["quantized_modules"] == 4  # the student's; the teacher has 6
    saved = torch.load(tmp_path / "kd_zoo_project" / "resnet8_last.pth", weights_only=False)
    assert any("scale" in key for key in saved["model"])  # the int8 student was saved


def test_the_scripts_own_teacher_distills_into_the_student(tmp_path):
    summary = rewrite_project_and_run(
        tmp_path, "kd_zoo_project", "train_student.py", "distillation"
    )
    assert summary["distillation_steps"] > 0
