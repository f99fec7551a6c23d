"""Many files over several processes: reports in the input order, scripts that share a
module of their project run in one group, and the result equals a run in one process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from neural_coder.batch import _groups, run_files
from neural_coder.report import FileReport, Status
from tests.conftest import SAMPLES, run_cli


def _report_with_pid(path: Path) -> FileReport:
    return FileReport(path=path, status=Status.UNCHANGED, message=str(os.getpid()))


def test_reports_keep_the_input_order_and_work_runs_in_other_processes(tmp_path):
    files = [tmp_path / f"script_{n}.py" for n in (3, 1, 2, 0, 5, 4)]
    reports = run_files(_report_with_pid, files, jobs=2)
    assert [r.path for r in reports] == files
    assert {r.message for r in reports} != {str(os.getpid())}  # not all in this process


def test_one_file_or_one_job_stays_in_this_process(tmp_path):
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for reports in (
        run_files(_report_with_pid, files[:1]),
        run_files(_report_with_pid, files, jobs=1),
    ):
        assert {r.message for r in reports} == {str(os.getpid())}


def test_scripts_sharing_a_module_form_one_group_in_input_order(tmp_path):
    a, b, c, d, shared = (tmp_path / f"{n}.py" for n in ("a", "b", "c", "d", "engine"))
    touched = {a: {shared}, c: {shared}, b: set(), d: {d.resolve()}}
    groups = _groups([a, b, c, d], lambda p: {f.resolve() for f in touched[p]})
    assert groups == [[0, 2], [1], [3]]


def test_a_folder_in_several_processes_gives_what_one_process_gives(tmp_path):
    folders = []
    for name in ("serial", "parallel"):
        folder = tmp_path / name
        folder.mkdir()
        for sample in ("flat_script.py", "epoch_fn_style.py", "eval_only.py"):
            shutil.copy(SAMPLES / sample, folder / sample)
        # main.py and engine.py of one project: one group, edited one after the other
        shutil.copytree(SAMPLES / "engine_project", folder / "engine_project")
        folders.append(folder)
    outputs = []
    for folder, jobs in zip(folders, ("1", "3")):
        result = run_cli("optimize", folder, "--approach", "pruning", "--jobs", jobs)
        outputs.append((result.exit_code, result.output.replace(str(folder), "FOLDER")))
    assert outputs[0] == outputs[1]
    assert outputs[0][1].index("engine_project/engine.py") < outputs[0][1].index("flat_script.py")
    for serial in sorted(folders[0].rglob("*.py")):
        assert (folders[1] / serial.relative_to(folders[0])).read_text() == serial.read_text()
