"""Shared test helpers: where the sample scripts are, and running the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from neural_coder.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
# beside the checkout, as CI lays it out (or where NEURAL_CODER_ACCEPTANCE points)
ACCEPTANCE = Path(os.environ.get("NEURAL_CODER_ACCEPTANCE", ROOT.parent / "shared" / "acceptance"))

TRAINING_STYLES = ["epoch_fn_style.py", "flat_script.py", "trainer_class.py", "hf_custom_loop.py"]
OWN_TRAINING_SAMPLES = ["step_budget_loop.py", "one_epoch_helper.py", "hf_conditional_model.py"]
# the model is wrapped (accelerate, DDP) before the loop: compressed before the wrap
WRAPPED_MODEL_SAMPLES = ["accelerate_loop.py", "ddp_torchrun.py"]
# a Hugging Face Trainer (or a subclass) runs the loop
TRAINER_SAMPLES = ["hf_trainer.py", "qa_trainer_subclass.py", "seq2seq_trainer.py"]
# samples whose model is built at random (no trained weights loaded before training):
# distillation from a frozen copy of them is asked for explicitly with --teacher copy
UNTRAINED_MODEL_SAMPLES = frozenset(
    {
        *TRAINING_STYLES,
        "step_budget_loop.py",
        "accelerate_output_field_backward.py",
        "tuple_output_hf_loop.py",
        "closure_step_trainer.py",
        "segmentation_dict_out.py",
        "lbfgs_closure.py",
        "one_epoch_helper.py",
        "hf_conditional_model.py",
        "accelerate_loop.py",
        "ddp_torchrun.py",
        "hf_trainer.py",
        "seq2seq_trainer.py",
        "peft_lora_finetune.py",
        "lora_mark_trainable.py",
        "lightning_fit.py",
        "native_scaler_loop.py",
        "multishot_cnn.py",
        "flag_epoch_fn.py",
        "step_factory_trainer.py",
        "shared_step_train_eval.py",
        "phase_tuple_progress.py",
        "step_factory_functions.py",
    }
)
APPROACHES = [
    "qat",
    "pruning",
    "distillation",
    "pruning+qat",
    "distillation+qat",
    "distillation+pruning",
    "distillation+pruning+qat",
]


def script_path(name: str) -> Path:
    """One of our own samples: the suite never depends on files outside this checkout."""
    path = SAMPLES / name
    if not path.is_file():
        raise FileNotFoundError(f"samples/{name} is missing")
    return path


def acceptance_scripts(pattern: str = "*.py") -> list[Path]:
    """The shared acceptance scripts when a checkout has them beside it (CI does): an extra
    floor on top of our own samples, never a replacement for them."""
    return sorted(ACCEPTANCE.glob(pattern)) if ACCEPTANCE.is_dir() else []


def teacher_args(name: str, options: tuple[str, ...] | list[str]) -> list[str]:
    """`--teacher copy` for distillation of an untrained sample, unless a teacher is given."""
    text = " ".join(options)
    if "distillation" in text and "--teacher" not in text and name in UNTRAINED_MODEL_SAMPLES:
        return ["--teacher", "copy"]
    return []


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def copy_script(tmp_path: Path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        target.write_text(script_path(name).read_text())
        return target

    return copy
