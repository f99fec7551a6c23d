"""The shared acceptance scripts: every training style takes every training approach, the
evaluation script takes every post-training one; each rewrite compiles, and a second run
is a no-op."""

from __future__ import annotations

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import APPROACHES, acceptance_scripts

POST_TRAINING = ["ptq-static", "ptq-dynamic", "bf16"]
TRAINS = [p for p in acceptance_scripts() if "Trainer(" in p.read_text() or ".backward(" in p.read_text()]
EVALUATES = [p for p in acceptance_scripts() if p not in TRAINS]
CASES = [(p, a) for p in TRAINS for a in APPROACHES] + [(p, a) for p in EVALUATES for a in POST_TRAINING]


@pytest.mark.parametrize(("path", "approach"), CASES, ids=lambda v: getattr(v, "name", v))
def test_acceptance_script_is_rewritten_and_a_second_run_is_a_no_op(path, approach):
    # the acceptance models are built at random: distillation copies them on request only
    teacher = "copy" if "distillation" in approach else None
    options = build_options(approach, None, {}, {"distillation": {"teacher": teacher}})
    rewritten, report = rewrite_source(path, path.read_text(), options)
    assert report.status is Status.TRANSFORMED, report
    compile(rewritten, str(path), "exec")
    again, second = rewrite_source(path, rewritten, options)
    assert second.status is Status.UNCHANGED and again == rewritten
