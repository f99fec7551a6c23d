"""A Hugging Face folder the script saves after an int8 approach and loads back itself
is loaded with `OptimizedModel.from_pretrained(folder, model_class=...)` (a transformers
class cannot load the runtime's int8 folder); other loads, other approaches and INC are
left alone; revert gives the script back."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source
from tests.conftest import script_path

SAMPLE = script_path("hf_train_then_infer.py").read_text()
RELOAD = "classifier = AutoModelForSequenceClassification.from_pretrained(SAVE_DIR)\n"


def rewrite(text: str, approach: str, target: str = "runtime") -> str:
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, target, {}, {}))
    assert report.status is Status.TRANSFORMED, report
    return out


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("approach", ["ptq-dynamic", "ptq-static", "qat", "pruning+qat"])
def test_the_saved_folder_is_loaded_back_with_the_int8_loader(approach):
    out = rewrite(SAMPLE, approach)
    assert (
        "classifier = OptimizedModel.from_pretrained( SAVE_DIR, "
        "model_class=AutoModelForSequenceClassification )"
    ) in flat(out)
    assert "import CompressionCallback, OptimizedModel" in out or "OptimizedModel," in out
    again, report = rewrite_source(Path("s.py"), out, build_options(approach, "runtime", {}, {}))
    assert again == out and report.status is Status.UNCHANGED
    assert revert_source(Path("s.py"), out)[0] == SAMPLE


@pytest.mark.parametrize(
    ("approach", "target"), [("pruning", "runtime"), ("bf16", "runtime"), ("ptq-dynamic", "inc")]
)
def test_float_results_and_inc_keep_the_scripts_loader(approach, target):
    assert RELOAD in rewrite(SAMPLE, approach, target)


@pytest.mark.parametrize(
    "load",
    [
        'classifier = AutoModelForSequenceClassification.from_pretrained("other_dir")\n',
        "classifier = AutoTokenizer.from_pretrained(SAVE_DIR)\n",
        "classifier = AutoModelForSequenceClassification.from_pretrained(SAVE_DIR, "
        "model_class=None)\n",
    ],
    ids=["another-folder", "a-tokenizer", "given-a-model-class"],
)
def test_other_loads_are_left_alone(load):
    text = SAMPLE.replace(RELOAD, load).replace(
        "    AutoModelForSequenceClassification,\n",
        "    AutoModelForSequenceClassification,\n    AutoTokenizer,\n",
    )
    assert load in rewrite(text, "ptq-dynamic")


def test_a_load_before_the_save_is_left_alone():
    text = SAMPLE.replace(
        "trainer.train()\n",
        "trainer.train()\nwarm = AutoModelForSequenceClassification.from_pretrained(SAVE_DIR)\n",
    )
    out = rewrite(text, "ptq-dynamic")
    assert "warm = AutoModelForSequenceClassification.from_pretrained(SAVE_DIR)\n" in out
    assert "OptimizedModel.from_pretrained(" in out  # the load after the save


def test_a_folder_saved_before_the_compression_is_left_alone():
    text = (
        SAMPLE.replace(
            "trainer = Trainer(\n", 'model.save_pretrained("base")\ntrainer = Trainer(\n'
        )
        + 'base = AutoModelForSequenceClassification.from_pretrained("base")\n'
    )
    out = rewrite(text, "ptq-dynamic")
    assert 'base = AutoModelForSequenceClassification.from_pretrained("base")\n' in out
    assert "OptimizedModel.from_pretrained(" in out  # SAVE_DIR, saved after the fit


PIPELINE = 'classify = pipeline("text-classification", model=SAVE_DIR)\n'


def test_a_pipeline_given_the_folder_gets_the_int8_model_and_the_folders_tokenizer():
    out = rewrite(SAMPLE, "ptq-dynamic")
    assert (
        'classify = pipeline( "text-classification", '
        "model=OptimizedModel.from_pretrained(SAVE_DIR), tokenizer=SAVE_DIR )"
    ) in flat(out)
    given = SAMPLE.replace(PIPELINE, PIPELINE.replace(")\n", ', tokenizer="tok")\n'))
    out = rewrite(given, "ptq-dynamic")
    assert 'model=OptimizedModel.from_pretrained(SAVE_DIR), tokenizer="tok"' in flat(out)
    assert revert_source(Path("s.py"), out)[0] == given


OUTPUT_DIR_TRAINER = """import argparse

from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="out")
args = parser.parse_args()
model = BertForSequenceClassification(BertConfig())
training_args = TrainingArguments(output_dir=args.out, num_train_epochs=1)
trainer = Trainer(model=model, args=training_args, train_dataset=train_rows, eval_dataset=eval_rows)
trainer.train()
print(trainer.evaluate())
SAVE
again = BertForSequenceClassification.from_pretrained(LOAD)
"""


@pytest.mark.parametrize(
    ("save", "load"),
    [
        ("trainer.save_model()", "args.out"),
        ("trainer.save_model()", "training_args.output_dir"),
        ("trainer.save_model(training_args.output_dir)", "args.out"),
        ("trainer.save_model(args.out)", "training_args.output_dir"),
    ],
)
@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_the_training_arguments_output_dir_is_the_folder_it_names(save, load, approach):
    """`trainer.save_model()` saves to the TrainingArguments' output_dir, and
    `training_args.output_dir` is the `output_dir=` they were built with: a load of that
    folder, spelled either way, gets the int8 loader (it gave back the float model, or
    failed with "no file named model.safetensors")."""
    text = OUTPUT_DIR_TRAINER.replace("SAVE", save).replace("LOAD", load)
    out = flat(rewrite(text, approach)).replace("( ", "(").replace(" )", ")")
    assert (
        f"again = OptimizedModel.from_pretrained({load}, model_class=BertForSequenceClassification)"
    ) in out


def test_a_save_model_of_other_training_arguments_is_another_folder():
    text = OUTPUT_DIR_TRAINER.replace("SAVE", "trainer.save_model()").replace("LOAD", '"elsewhere"')
    assert 'again = BertForSequenceClassification.from_pretrained("elsewhere")' in rewrite(
        text, "qat"
    )


def test_save_model_with_parsed_arguments_is_their_output_dir():
    """`model_args, training_args = parser.parse_args_into_dataclasses()` (run_glue): no
    TrainingArguments call names the folder, `training_args.output_dir` does."""
    text = (
        OUTPUT_DIR_TRAINER.replace(
            "training_args = TrainingArguments(output_dir=args.out, num_train_epochs=1)",
            "model_args, training_args = HfArgumentParser((Args, TrainingArguments))"
            ".parse_args_into_dataclasses()",
        )
        .replace("SAVE", "trainer.save_model()")
        .replace("LOAD", "training_args.output_dir")
        .replace("Trainer, TrainingArguments", "HfArgumentParser, Trainer, TrainingArguments")
    )
    out = flat(rewrite(text, "qat")).replace("( ", "(").replace(" )", ")")
    assert (
        "again = OptimizedModel.from_pretrained(training_args.output_dir, "
        "model_class=BertForSequenceClassification)"
    ) in out
