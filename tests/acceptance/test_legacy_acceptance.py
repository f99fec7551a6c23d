"""The shared INC 1.x acceptance scripts, migrated with both targets and run."""

from __future__ import annotations

import pytest

from tests.conftest import ACCEPTANCE
from tests.migrate.test_e2e import TARGETS, migrate_and_run

pytestmark = pytest.mark.e2e

LEGACY_ACCEPTANCE = ACCEPTANCE / "legacy"


@pytest.mark.parametrize("target", TARGETS)
def test_prune_loop(tmp_path, target):
    facts, summary, _ = migrate_and_run(
        tmp_path, LEGACY_ACCEPTANCE, "prune_loop.py", "pruned_model", target=target
    )
    # names ['0.weight', '2.weight'] at 0.75, reached at end_epoch 3 of 4
    assert facts["sparsity"]["0"] == pytest.approx(0.75, abs=0.02)
    assert facts["sparsity"]["2"] == pytest.approx(0.75, abs=0.02)
    assert facts["sparsity"]["4"] == 0.0
    assert facts["quantized"] == []


@pytest.mark.parametrize("target", TARGETS)
def test_distill(tmp_path, target):
    facts, summary, _ = migrate_and_run(
        tmp_path, LEGACY_ACCEPTANCE, "distill.py", "best", target=target
    )
    assert facts["quantized"] == [] and set(facts["sparsity"].values()) == {0.0}
    if target == "runtime":
        assert summary is not None and summary["techniques"] == ["distillation"]
        assert summary["distillation_steps"] > 0


@pytest.mark.parametrize("target", TARGETS)
def test_scheduler_prune_qat(tmp_path, target):
    facts, summary, _ = migrate_and_run(
        tmp_path, LEGACY_ACCEPTANCE, "scheduler_prune_qat.py", "opt_model", target=target
    )
    assert facts["quantized"], facts
    # the conv named in prune_conf.yaml is pruned to 0.5 (end_epoch 1 of 2) before int8 conversion
    assert facts["sparsity"]["0"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("target", TARGETS)
def test_ptq_static(tmp_path, target):
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_ACCEPTANCE, "ptq_static.py", "q_model", target=target
    )
    assert facts["quantized"], facts
    assert (tmp_path / "saved_results").is_dir()


# -- our own 1.x samples -----------------------------------------------------------------
