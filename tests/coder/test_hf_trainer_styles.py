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


# -- post-training quantization of a Trainer script that saves before it evaluates ------
S2S = "seq2seq_generate_trainer.py"


def _lines(text: str, *needles: str) -> list[int]:
    rows = text.splitlines()
    return [next(i for i, row in enumerate(rows, 1) if needle in row) for needle in needles]


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
def test_the_fit_goes_before_the_save_that_precedes_evaluation(approach):
    """train() -> save_model() -> evaluate() -> predict() (run_summarization's order): the
    fit was placed before evaluate(), so save_model() wrote the fp32 model."""
    rewritten, report = _rewrite(script_path(S2S).read_text(), approach)
    assert report.status is Status.TRANSFORMED and not report.warnings
    fit, use, save, evaluate = _lines(
        rewritten,
        ".fit(",
        "use_quantized_model(trainer",
        "trainer.save_model()",
        "trainer.evaluate(",
    )
    assert fit < use < save < evaluate


@pytest.mark.parametrize(
    "save", ["trainer.save_model(training_args.output_dir)", "trainer.model.save_pretrained('out')"]
)
def test_each_way_of_saving_the_trainers_model_takes_the_fit_before_it(save):
    text = script_path(S2S).read_text().replace("trainer.save_model()", save)
    rewritten, _ = _rewrite(text, "ptq-dynamic")
    fit, saved = _lines(rewritten, ".fit(", save)
    assert fit < saved


def test_a_save_on_the_training_branch_only_keeps_the_fit_before_evaluation_and_warns():
    """`if do_train: train(); save_model()` / `if do_eval: evaluate()`: an evaluation-only
    run must be quantized too, so the fit stays before evaluate() and the save is named."""
    text = script_path(S2S).read_text()
    text = text.replace(
        "    train_result = trainer.train()\n    trainer.save_model()\n"
        '    trainer.log_metrics("train", train_result.metrics)\n',
        "    if args.num_train_epochs > 0:\n        train_result = trainer.train()\n"
        '        trainer.save_model()\n        trainer.log_metrics("train", train_result.metrics)\n',
    )
    rewritten, report = _rewrite(text, "ptq-static")
    fit, save, evaluate = _lines(rewritten, ".fit(", "trainer.save_model()", "trainer.evaluate(")
    assert save < fit < evaluate
    (warning,) = [w for w in report.warnings if "saves the model before it is quantized" in w]
    assert f"line {_lines(text, 'trainer.save_model()')[0]}" in warning


# -- a training_step override that computes the loss itself -----------------------------
RDROP = "rdrop_trainer.py"
VIA_COMPUTE_LOSS = (
    "        out1 = model(**inputs)\n",
    "        loss1, out1 = self.compute_loss(model, inputs, return_outputs=True)\n",
)


@pytest.mark.parametrize("approach", ["distillation", "distillation+qat"])
def test_distillation_of_a_trainer_whose_training_step_skips_compute_loss_is_refused(approach):
    """with_distillation adds the loss in compute_loss, which RDropTrainer.training_step
    never calls: before, the rewrite ran with distillation_steps 0."""
    text = script_path(RDROP).read_text()
    with pytest.raises(AnalysisError) as caught:
        _rewrite(text, approach, teacher="copy")
    step = _lines(text, "def training_step")[0]
    assert caught.value.line == step
    assert f"RDropTrainer.training_step at line {step} computes its loss without" in str(
        caught.value
    )
    assert "self.compute_loss(model, inputs)" in caught.value.hint


def test_the_refusal_leaves_the_file_untouched_and_qat_still_goes_through(tmp_path):
    script = tmp_path / RDROP
    script.write_text(script_path(RDROP).read_text())
    before = script.read_text()
    result = run_cli("optimize", script, "--approach", "distillation", "--teacher", "copy")
    assert result.exit_code == 1 and "computes its loss without" in result.output
    assert script.read_text() == before
    result = run_cli("optimize", script, "--approach", "pruning+qat")
    assert result.exit_code == 0 and "Transformed" in result.output


@pytest.mark.parametrize(
    "step_line",
    [
        VIA_COMPUTE_LOSS[1],
        "        out1 = model(**inputs)\n        super().training_step(model, inputs)\n",
    ],
)
def test_a_training_step_that_reaches_compute_loss_is_distilled(step_line):
    text = script_path(RDROP).read_text().replace(VIA_COMPUTE_LOSS[0], step_line)
    rewritten, report = _rewrite(text, "distillation", teacher="copy")
    assert report.status is Status.TRANSFORMED
    assert "with_distillation(trainer, compression_manager)" in rewritten


def test_compute_metrics_given_only_with_generation_still_names_the_tuning_metric():
    """run_translation passes `compute_metrics if predict_with_generate else None`: the
    keys are read through the conditional (before: tuning fell back to eval_loss)."""
    text = (
        script_path(S2S)
        .read_text()
        .replace(
            "compute_metrics=compute_metrics,",
            "compute_metrics=compute_metrics if training_args.predict_with_generate else None,",
        )
    )
    rewritten, report = _rewrite(text, "ptq-static")
    assert 'trainer_eval_func(trainer, "eval_token_match")' in rewritten
    assert not any("could not be read" in w for w in report.warnings)


@pytest.mark.parametrize(
    "guard", ["if trainer.is_world_process_zero():", "if training_args.should_save:"]
)
def test_a_guarded_save_between_training_and_evaluation_takes_the_fit_before_its_guard(guard):
    text = (
        script_path(S2S)
        .read_text()
        .replace("    trainer.save_model()\n", f"    {guard}\n        trainer.save_model()\n")
    )
    rewritten, report = _rewrite(text, "ptq-dynamic")
    fit, guarded, save = _lines(rewritten, ".fit(", guard, "trainer.save_model()")
    assert fit < guarded < save
    assert not any("saves the model before" in w for w in report.warnings)


EVAL_ONCE = (
    '    metrics = trainer.evaluate(max_length=6, num_beams=1, metric_key_prefix="eval")\n'
    '    print("eval", metrics)\n'
)
EVAL_PER_SET = (
    "    for split, eval_set in {'dev': CopyTask(16, seed=1), 'test': CopyTask(16, seed=3)}.items():\n"
    "        metrics = trainer.evaluate(eval_dataset=eval_set, metric_key_prefix=split)\n"
    "        print(split, metrics)\n"
)


@pytest.mark.parametrize("saved", [True, False])
def test_evaluation_sets_in_a_loop_get_one_fit_before_the_loop(saved):
    """run_glue's `for eval_dataset, task in zip(...): trainer.evaluate(eval_dataset=...)`:
    the fit went inside the loop, quantizing trainer.model once per set (the second time
    the int8 model already)."""
    text = script_path(S2S).read_text()
    assert EVAL_ONCE in text
    text = text.replace(EVAL_ONCE, EVAL_PER_SET)
    if not saved:
        text = text.replace("    trainer.save_model()\n", "")
    rewritten, _ = _rewrite(text, "ptq-static")
    fit, loop = _lines(rewritten, ".fit(", "for split, eval_set in")
    assert fit < loop and rewritten.count(".fit(") == 1
    assert rewritten.splitlines()[fit - 1].startswith("    quantized_model = ")
