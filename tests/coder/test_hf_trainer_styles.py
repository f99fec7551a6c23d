"""Hugging Face Trainer styles: a distillation Trainer subclass that takes its teacher as
a keyword already distils, so --approach distillation is refused with the way out
(--teacher naming that teacher), which then rewrites (and is a no-op the second time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import run_cli, script_path

SAMPLE = "distillation_trainer_subclass.py"


def _rewrite(text: str, approach: str, teacher: str | None = None) -> tuple[str, object]:
    options = build_options(approach, "runtime", {}, {"distillation": {"teacher": teacher}})
    return rewrite_source(Path(SAMPLE), text, options)


@pytest.mark.parametrize("keyword", ["teacher", "teacher_model"])
def test_distillation_of_a_trainer_that_distils_is_refused_naming_its_teacher(keyword):
    text = script_path(SAMPLE).read_text().replace("teacher=teacher,", f"{keyword}=teacher,")
    text = text.replace(
        "def __init__(self, *args, teacher=None", f"def __init__(self, *args, {keyword}=None"
    )
    text = text.replace("self.teacher = teacher.eval()", f"self.teacher = {keyword}.eval()")
    with pytest.raises(AnalysisError) as caught:
        _rewrite(text, "distillation")
    message = str(caught.value)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "trainer = KDTrainer(" in row)
    assert f"already distils student from its teacher ({keyword}=teacher at line {line})" in message
    assert "--teacher teacher" in message and "--approach qat or pruning" in message


def test_the_cli_refusal_leaves_the_file_untouched(tmp_path):
    script = tmp_path / SAMPLE
    script.write_text(script_path(SAMPLE).read_text())
    before = script.read_text()
    result = run_cli("optimize", script, "--approach", "distillation")
    assert result.exit_code == 1 and "already distils" in result.output
    assert script.read_text() == before and not (tmp_path / f"{SAMPLE}.bak").exists()


def test_naming_the_teacher_adds_the_runtime_loss_and_is_a_no_op_again():
    text = script_path(SAMPLE).read_text()
    rewritten, report = _rewrite(text, "distillation", teacher="teacher")
    assert report.status is Status.TRANSFORMED
    assert "teacher_model = teacher  # neural-coder" in rewritten
    assert "DistillationConfig(" in rewritten and "teacher_model=teacher_model" in rewritten
    again, second = _rewrite(rewritten, "distillation", teacher="teacher")
    assert second.status is Status.UNCHANGED and again == rewritten
