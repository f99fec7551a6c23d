"""Scripts where the loop is not the user's own plain loop: a Hugging Face Trainer
(and a subclass), an accelerate loop, and a DDP script launched with torchrun on
two processes. Each is rewritten, executed, and checked from the runtime summary."""

from __future__ import annotations

import pytest

from tests.e2e.runner import TORCHRUN, rewrite_and_run

pytestmark = pytest.mark.e2e

TARGET_SPARSITY = 0.5


def check(summary: dict, approach: str) -> None:
    techniques = approach.split("+")
    if "pruning" in techniques:
        assert summary["sparsity"] == pytest.approx(TARGET_SPARSITY, abs=0.02), summary
        assert summary["pruning_target_reached"] is True
    if "qat" in techniques:
        assert summary["quantized_modules"] > 0
    if "distillation" in techniques:
        assert summary["distillation_steps"] > 0


@pytest.mark.parametrize(
    ("name", "approach"),
    [
        ("hf_trainer.py", "qat"),
        ("hf_trainer.py", "pruning"),
        ("hf_trainer.py", "distillation"),
        ("hf_trainer.py", "distillation+pruning+qat"),
        ("qa_trainer_subclass.py", "pruning+qat"),
        ("qa_trainer_subclass.py", "distillation"),
        ("accelerate_loop.py", "pruning+qat"),
        ("accelerate_loop.py", "distillation"),
    ],
)
def test_trainer_and_accelerate_scripts(tmp_path, name, approach):
    summary = rewrite_and_run(
        tmp_path, name, "--approach", approach, "--target-sparsity", str(TARGET_SPARSITY)
    )
    check(summary, approach)


@pytest.mark.parametrize("approach", ["pruning+qat", "distillation"])
def test_torchrun_ddp_script_on_two_processes(tmp_path, approach):
    summary = rewrite_and_run(
        tmp_path,
        "ddp_torchrun.py",
        "--approach",
        approach,
        "--target-sparsity",
        str(TARGET_SPARSITY),
        launcher=TORCHRUN,
    )
    check(summary, approach)
    assert (tmp_path / "ddp_model.pt").is_file()


@pytest.mark.parametrize(
    ("name", "approach"),
    [("hf_trainer.py", "ptq-static"), ("qa_trainer_subclass.py", "ptq-dynamic")],
)
def test_trainer_scripts_post_training(tmp_path, name, approach):
    """fit after trainer.train(), tuned with trainer.evaluate()."""
    summary = rewrite_and_run(tmp_path, name, "--approach", approach)
    assert summary["quantized_modules"] > 0
    assert summary["trials"], summary
    assert summary["baseline_metric"] is not None
