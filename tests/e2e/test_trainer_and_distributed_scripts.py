"""Scripts where the loop is not the user's own plain loop: a Hugging Face Trainer
(and a subclass), an accelerate loop, and a DDP script launched with torchrun on
two processes. Each is rewritten, executed, and checked from the runtime summary."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import TORCHRUN, rewrite_and_run, run_script

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
        ("seq2seq_trainer.py", "pruning+qat"),
        ("seq2seq_trainer.py", "distillation"),
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
    [
        ("hf_trainer.py", "ptq-static"),
        ("qa_trainer_subclass.py", "ptq-dynamic"),
        # an encoder-decoder: calibration keeps the labels it builds its decoder inputs from
        ("seq2seq_trainer.py", "ptq-static"),
    ],
)
def test_trainer_scripts_post_training(tmp_path, name, approach):
    """fit after trainer.train(), tuned with trainer.evaluate()."""
    summary = rewrite_and_run(tmp_path, name, "--approach", approach)
    assert summary["quantized_modules"] > 0
    assert summary["trials"], summary
    assert summary["baseline_metric"] is not None


# The two Hugging Face acceptance styles for the approaches the cases above and
# tests/e2e/test_rewritten_scripts_run.py leave out.
@pytest.mark.parametrize(
    ("name", "approach"),
    [
        (name, approach)
        for name in ("hf_trainer.py", "hf_custom_loop.py")
        for approach in ("pruning+qat", "distillation+qat", "distillation+pruning")
    ],
)
def test_hugging_face_scripts_for_the_remaining_combinations(tmp_path, name, approach):
    summary = rewrite_and_run(
        tmp_path, name, "--approach", approach, "--target-sparsity", str(TARGET_SPARSITY)
    )
    check(summary, approach)


@pytest.mark.parametrize(
    ("name", "approach"),
    [
        ("hf_trainer.py", "ptq-dynamic"),
        ("hf_trainer.py", "ptq-auto"),
        ("hf_custom_loop.py", "ptq-static"),
        ("hf_custom_loop.py", "ptq-dynamic"),
    ],
)
def test_hugging_face_scripts_quantized_after_training(tmp_path, name, approach):
    summary = rewrite_and_run(tmp_path, name, "--approach", approach)
    assert summary["quantized_modules"] > 0, summary
    tuned = (
        name == "hf_trainer.py"
    )  # trainer.evaluate() drives tuning; the custom loop has no evaluation
    assert (summary["baseline_metric"] is not None) is tuned, summary


def test_bf16_with_a_trainer_measures_every_layer_before_converting(tmp_path):
    summary = rewrite_and_run(tmp_path, "hf_trainer.py", "--approach", "bf16")
    # layers this small gain nothing in bf16 on a CPU: fit keeps fp32 and says why
    assert summary["bf16_modules"] > 0 or summary["bf16_refused"], summary
    assert len(summary["bf16_measurements"]) == 14  # every Linear of the tiny BERT was timed


def test_bf16_without_an_evaluation_measures_on_a_batch_of_the_scripts_loader(tmp_path):
    summary = rewrite_and_run(tmp_path, "hf_custom_loop.py", "--approach", "bf16")
    assert summary["baseline_metric"] is None  # nothing evaluates the model: no tuning
    assert len(summary["bf16_measurements"]) == 14  # but every Linear was timed on a batch
    assert summary["bf16_modules"] > 0 or "measured no gain" in summary["bf16_refused"], summary


@pytest.mark.parametrize("name", ["hf_trainer.py", "hf_custom_loop.py", "eval_only.py"])
def test_benchmark_rewrites_run_and_print_the_table(tmp_path, name):
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", "benchmark")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    run, _ = run_script(script)
    assert "Throughput sum [samples/second]:" in run.stdout, run.stdout[-2000:]
    assert "Latency average [second/sample]:" in run.stdout


def test_a_trainer_class_handed_the_model_leaves_its_builder_the_int8_model(tmp_path):
    """minGPT style: the script builds the model, hands it to Trainer(...), runs it, then
    evaluates and saves its own `model`: QAT in place makes that module the int8 one."""
    import torch

    summary = rewrite_and_run(tmp_path, "trainer_holds_model.py", "--approach", "qat")
    assert summary["quantized_modules"] == 3
    assert summary["qat_path"] == "eager"
    saved = torch.load(tmp_path / "trainer_model.pt", weights_only=False)
    assert any(key.endswith("_packed_params._packed_params") for key in saved), list(saved)
