"""Hooks on every path of a training step, run: the default fp32 path of an AMP
script, the manual SGD update of a script that steps an optimizer only on request,
and a model wrapped in `if distributed / elif gpu / else DataParallel` branches."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.runner import rewrite_and_run, run_script

pytestmark = pytest.mark.e2e

TARGET = 0.5


def _pruned(summary: dict) -> None:
    assert summary["sparsity"] == pytest.approx(TARGET, abs=0.02), summary
    assert summary["pruning_target_reached"] is True


def test_amp_script_is_pruned_and_quantized_in_its_default_fp32_run(tmp_path):
    """The default run takes the fp32 branch (no scaler) and the DataParallel branch:
    both get the hooks, and the checkpoint saved through `model.module` is the QAT one."""
    summary = rewrite_and_run(
        tmp_path,
        "amp_reference_train.py",
        "--approach",
        "pruning+qat",
        "--target-sparsity",
        str(TARGET),
    )
    _pruned(summary)
    assert summary["quantized_modules"] > 0
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert any(key.endswith("scale") for key in saved), sorted(saved)[:10]


def test_manual_sgd_update_is_the_optimizer_step(tmp_path):
    summary = rewrite_and_run(
        tmp_path, "manual_sgd_lm.py", "--approach", "pruning", "--target-sparsity", str(TARGET)
    )
    _pruned(summary)  # the default run steps by hand
    summary = run_script(tmp_path / "manual_sgd_lm.py", "--use-optimizer")[1]
    _pruned(summary)


@pytest.mark.parametrize("budget", [(), ("--max_train_steps", "12")])
def test_pruning_schedule_fits_the_steps_the_run_takes(tmp_path, budget):
    """The budget is set after `accelerator.prepare` (or on the command line, shorter
    than the epochs): the schedule follows it, so pruning ends inside the run."""
    script = tmp_path / "no_trainer_max_steps.py"
    summary = rewrite_and_run(
        tmp_path, script.name, "--approach", "pruning+qat", "--target-sparsity", str(TARGET)
    )
    if budget:
        summary = run_script(script, *budget)[1]
    _pruned(summary)
    assert summary["quantized_modules"] > 0
    if budget:
        assert summary["pruning_steps_seen"] == 12


def test_step_function_passed_to_the_loop_is_hooked(tmp_path):
    """`run_epochs(train_step, net, loader, epochs)` calls `step_fn(model, x, y)`."""
    summary = rewrite_and_run(
        tmp_path,
        "step_fn_closure.py",
        "--approach",
        "pruning+qat",
        "--target-sparsity",
        str(TARGET),
    )
    _pruned(summary)
    saved = torch.load(tmp_path / "closure_model.pt", weights_only=True)
    assert any(key.endswith("scale") for key in saved), "the saved model is not the QAT one"


def test_ddp_wrapped_in_a_trainer_init_gets_qat_and_pruning(tmp_path):
    """`self.model = DDP(model)` in `Trainer.__init__`: the bare model is prepared there
    (one gloo process), and the snapshot rank 0 saves is the int8-ready QAT model."""
    summary = rewrite_and_run(
        tmp_path,
        "ddp_trainer_class.py",
        "--approach",
        "pruning+qat",
        "--target-sparsity",
        str(TARGET),
    )
    _pruned(summary)
    assert summary["quantized_modules"] > 0
    saved = torch.load(tmp_path / "snapshot.pt", weights_only=True)
    assert any(key.endswith("scale") for key in saved), "the snapshot is not the QAT model"


def test_micro_step_accumulation_with_an_iteration_budget(tmp_path):
    """`while True` over iterations, backward in `for micro_step in range(n)`, the
    optimizer step after it, `if iter_num > max_iters: break`."""
    summary = rewrite_and_run(
        tmp_path,
        "micro_step_loop.py",
        "--approach",
        "pruning+qat",
        "--target-sparsity",
        str(TARGET),
    )
    _pruned(summary)
    assert summary["pruning_steps_seen"] == 31  # optimizer steps, not micro-steps
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert any(key.endswith("scale") for key in saved), "the checkpoint is not the QAT model"


def test_a_reference_pass_before_training_leaves_the_loop_hooked(tmp_path):
    """Everything under `if __name__ == "__main__":`, a one-off forward/backward that dumps
    reference gradients before training, micro-steps under `with ctx:` (nullcontext on
    CPU): the iteration loop gets the hooks, the one-off pass none, and the saved weights
    are the int8 model's."""
    summary = rewrite_and_run(
        tmp_path,
        "reference_pass_micro_steps.py",
        "--approach",
        "pruning+qat",
        "--target-sparsity",
        str(TARGET),
    )
    _pruned(summary)
    assert summary["pruning_steps_seen"] == 40  # optimizer steps, not micro-steps
    assert summary["quantized_modules"] == 2  # mix and head; the embedding stays fp32
    reference = torch.load(tmp_path / "reference_grads.pt", weights_only=True)
    assert set(reference) == {
        f"{m}.{p}" for m in ("embed", "mix", "head") for p in ("weight", "bias")
    } - {"embed.bias"}
    saved = torch.load(tmp_path / "tiny_lm.pt", weights_only=False)
    packed = [key for key in saved if key.endswith("_packed_params._packed_params")]
    assert len(packed) == summary["quantized_modules"], sorted(saved)
