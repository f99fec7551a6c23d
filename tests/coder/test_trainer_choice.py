"""Which Trainer a script compresses: a Trainer built again under its name (a search,
then the final run) owns the calls after it; `# neural-coder: train` picks one of several
trained Trainers; a Trainer given `model_init` gets the configs in its callback."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status


def optimize(text: str, approach: str):
    options = build_options(approach, None, {}, {})
    return rewrite_source(Path("script.py"), text, options)


KD_TRAINER = """\
from transformers import Trainer

class DistillationTrainer(Trainer):
    def __init__(self, *args, teacher_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher_model

def student_init():
    return make_student()

teacher = load_teacher()
{first}
trainer = DistillationTrainer(model_init=student_init, args=args, teacher_model=teacher)
trainer.train()
"""


def test_a_trainer_built_again_under_its_name_is_the_one_trained():
    first = (
        "trainer = DistillationTrainer(model_init=student_init, args=args, teacher_model=teacher)\n"
    )
    first += "best = trainer.hyperparameter_search(n_trials=2)"
    rewritten, report = optimize(KD_TRAINER.format(first=first), "qat")
    assert report.status is Status.TRANSFORMED
    assert rewritten.count("callbacks=[compression_callback]") == 1
    assert "CompressionCallback(configs=QuantizationAwareTrainingConfig())" in rewritten


def test_a_trainer_built_again_in_a_branch_leaves_both_trained():
    first = "if fast:\n    trainer = DistillationTrainer(model=make_student(), args=args)\n"
    final = "trainer = DistillationTrainer(model_init"
    text = KD_TRAINER.format(first="").replace(final, first + "else:\n    " + final)
    with pytest.raises(NeuralCoderError, match="several Trainers are trained"):
        optimize(text, "qat")


def test_distillation_of_a_model_init_student_is_refused_clearly():
    for teacher in (None, "teacher"):
        overrides = {"distillation": {"teacher": teacher}} if teacher else {}
        options = build_options("distillation", None, {}, overrides)
        with pytest.raises(NeuralCoderError) as caught:
            rewrite_source(Path("script.py"), KD_TRAINER.format(first=""), options)
        assert "model_init" in caught.value.message or "already distils" in caught.value.message


def test_the_train_marker_picks_one_of_several_trained_trainers():
    text = (
        "from transformers import Trainer\n"
        "model = load()\n"
        "search = Trainer(model=model, args=args)\n"
        "search.train()\n"
        "final = Trainer(model=model, args=args)\n"
        "final.train()\n"
    )
    with pytest.raises(NeuralCoderError, match="several Trainers") as caught:
        optimize(text, "pruning")
    assert "# neural-coder: train" in (caught.value.hint or "")
    marked = text.replace("final.train()", "final.train()  # neural-coder: train")
    rewritten, report = optimize(marked, "pruning")
    assert report.status is Status.TRANSFORMED
    assert rewritten.count("callbacks=[CompressionCallback(") == 1
    assert rewritten.index("callbacks=") > rewritten.index("final = Trainer(")
    assert "search = Trainer(model=model, args=args)\n" in rewritten
    assert any("line 3: a Trainer not marked" in w for w in report.warnings)
