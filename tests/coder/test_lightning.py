"""Lightning scripts: what analysis finds, where the callback goes, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import script_path

MODULE = """
import torch
import pytorch_lightning as pl


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.fc(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

"""

ARGPARSE_TRAINER = (
    MODULE
    + """
def main(args, train_loader):
    model = Net()
    trainer = pl.Trainer.from_argparse_args(args)
    trainer.fit(model, train_loader)
    trainer.test(test_dataloaders=train_loader)
"""
)

CLI_RUN_FALSE = (
    MODULE.replace(
        "import pytorch_lightning as pl",
        "import lightning as L\nfrom lightning.pytorch.cli import LightningCLI",
    ).replace("pl.LightningModule", "L.LightningModule")
    + """
def cli_main():
    cli = LightningCLI(Net, run=False)
    cli.trainer.fit(cli.model)
"""
)

CLI_NO_DEFAULTS = CLI_RUN_FALSE.replace(
    "    cli = LightningCLI(Net, run=False)\n    cli.trainer.fit(cli.model)\n",
    "    LightningCLI(Net, seed_everything_default=1)\n",
)


def rewrite(text: str, approach: str, **distillation: str) -> str:
    options = build_options(
        approach, "runtime", {}, {"distillation": distillation} if distillation else {}
    )
    rewritten, report = rewrite_source(Path("lit.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("lit.py"), rewritten, options)
    assert second.status is Status.UNCHANGED and again == rewritten
    compile(rewritten, "lit.py", "exec")
    return rewritten


def test_trainer_from_argparse_args_gets_the_callback_before_fit():
    out = rewrite(ARGPARSE_TRAINER, "pruning")
    lines = out.splitlines()
    fit = lines.index("    trainer.fit(model, train_loader)")
    assert lines[fit - 1] == (
        "    trainer.callbacks.append(CompressionCallback(compression_manager, prune_until=0.8))  # neural-coder"
    )
    assert any(
        line.startswith("    compression_manager = prepare_compression(") for line in lines[:fit]
    )
    assert "from neural_coder.runtime.integrations.lightning import CompressionCallback" in out


def test_cli_trainer_of_a_cli_that_does_not_run():
    out = rewrite(CLI_RUN_FALSE, "qat")
    assert (
        "compression_manager = prepare_compression(cli.model, QuantizationAwareTrainingConfig())"
        in out
    )
    assert "cli.trainer.callbacks.append(CompressionCallback(compression_manager))" in out


def test_a_cli_that_runs_fit_gets_trainer_defaults():
    out = rewrite(CLI_NO_DEFAULTS, "pruning+qat")
    assert 'trainer_defaults={"callbacks": [compression_callback]}' in out
    assert "compression_callback = CompressionCallback(" in out
    assert "import prepare_compression" not in out  # the callback prepares the manager


def test_a_cli_trainer_defaults_name_is_merged():
    text = CLI_NO_DEFAULTS.replace("seed_everything_default=1", "trainer_defaults=DEFAULTS")
    out = rewrite("DEFAULTS = {}\n" + text, "pruning")
    assert (
        '{**(DEFAULTS), "callbacks": [*(DEFAULTS).get("callbacks", []), compression_callback]}'
        in out
    )


def test_cli_distillation_needs_a_teacher_and_takes_a_checkpoint():
    with pytest.raises(NeuralCoderError, match="builds the module and runs fit itself") as error:
        rewrite(CLI_NO_DEFAULTS, "distillation")
    assert "--teacher" in error.value.hint
    out = rewrite(CLI_NO_DEFAULTS, "distillation", teacher="teacher.ckpt")
    assert 'teacher_model = Net.load_from_checkpoint("teacher.ckpt")' in out
    assert "import copy" not in out


def test_distillation_copies_a_module_loaded_from_a_checkpoint():
    text = ARGPARSE_TRAINER.replace("model = Net()", "model = Net.load_from_checkpoint(args.ckpt)")
    out = rewrite(text, "distillation")
    assert "teacher_model = copy.deepcopy(model)" in out
    with pytest.raises(NeuralCoderError, match="randomly initialised"):
        rewrite(ARGPARSE_TRAINER, "distillation")


FIT_LINE = ARGPARSE_TRAINER.splitlines().index("    trainer.fit(model, train_loader)") + 1


TESTED = ARGPARSE_TRAINER.replace(
    "trainer.test(test_dataloaders=train_loader)", "trainer.test(model, dataloaders=train_loader)"
)
WITH_FORWARD = TESTED.replace(
    "    def training_step(",
    "    def forward(self, x):\n        return self.fc(x)\n\n    def training_step(",
)


def test_static_quantization_after_fit_calibrates_on_the_trainers_loader():
    out = rewrite(WITH_FORWARD, "ptq-static")
    fit_at = out.index("trainer.fit(model, train_loader)")
    quantize_at = out.index("quantized_model = quantization.fit(")
    assert fit_at < quantize_at < out.index("trainer.test(model, dataloaders=train_loader)")
    assert 'approach="static"' in out
    assert "calib_dataloader=lightning_calib_dataloader(trainer)" in out
    assert 'eval_func=lightning_eval_func(trainer, "test", dataloaders=train_loader)' in out
    assert "model = quantized_lightning_module(quantized_model, model)" in out


def test_bf16_after_fit_is_measured_on_a_batch_of_the_trainer():
    out = rewrite(WITH_FORWARD, "bf16")
    assert "quantized_model = mix_precision.fit(" in out
    assert "example_inputs=lightning_example_inputs(trainer)" in out
    assert 'eval_func=lightning_eval_func(trainer, "test", dataloaders=train_loader)' in out
    assert "model = quantized_lightning_module(quantized_model, model)" in out


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-auto", "bf16"])
def test_a_module_without_forward_is_refused_where_its_batches_must_run_it(approach):
    # MODULE's steps call self.fc directly: calibration / bf16's measurement call model(x)
    with pytest.raises(NeuralCoderError, match="Net defines no forward") as error:
        rewrite(TESTED, approach)
    assert error.value.line == TESTED.splitlines().index("class Net(pl.LightningModule):") + 1
    assert "def forward(self, x)" in error.value.hint
    rewrite(TESTED, "ptq-dynamic")  # swaps Linear layers without running the module


def test_benchmark_and_inc_static_quantization_after_fit_are_refused_with_the_reason():
    with pytest.raises(NeuralCoderError, match="benchmark is not routed") as error:
        rewrite(WITH_FORWARD, "benchmark")
    assert error.value.line == FIT_LINE + 3  # the forward's three lines come before
    options = build_options("ptq-static", "inc", {}, {})
    with pytest.raises(NeuralCoderError, match="INC's static quantization traces the Lightning"):
        rewrite_source(Path("lit.py"), WITH_FORWARD, options)


@pytest.mark.parametrize("approach", ["ptq-dynamic"])  # static and bf16 need a forward
def test_a_converted_module_nothing_uses_afterwards_is_saved_on_global_rank_zero(approach):
    fit_only = ARGPARSE_TRAINER.replace("    trainer.test(test_dataloaders=train_loader)\n", "")
    text = rewrite(fit_only, approach)  # a second run is a no-op, checked there
    assert (
        "    if quantized_model is not None and trainer.is_global_zero:  # neural-coder\n"
        f'        quantized_model.save("neural_coder_output/{approach}")  # neural-coder\n'
    ) in text
    assert text.index("quantized_lightning_module(") < text.index("quantized_model.save(")
    # trainer.test() without the module tests the float checkpoint: still refused
    with pytest.raises(NeuralCoderError, match="is not given model") as error:
        rewrite(ARGPARSE_TRAINER, approach)
    assert error.value.line == FIT_LINE


def test_an_evaluation_without_the_module_or_with_a_checkpoint_is_refused():
    saved = "    torch.save(model.state_dict(), 'm.pt')\n"
    without = ARGPARSE_TRAINER + saved
    with pytest.raises(NeuralCoderError, match="not given model"):
        rewrite(without, "ptq-dynamic")
    best = ARGPARSE_TRAINER.replace(
        "trainer.test(test_dataloaders=train_loader)",
        "trainer.test(model, train_loader, ckpt_path='best')",
    )
    with pytest.raises(NeuralCoderError, match="float weights into the int8 module"):
        rewrite(best, "ptq-dynamic")


def test_dynamic_quantization_after_fit_is_tuned_with_the_scripts_validate():
    text = ARGPARSE_TRAINER.replace(
        "    trainer.fit(model, train_loader)\n    trainer.test(test_dataloaders=train_loader)\n",
        "    dm = DigitsData()\n    trainer.fit(model, datamodule=dm)\n"
        "    trainer.validate(model, datamodule=dm, verbose=True)\n    return model\n",
    )
    out = rewrite(text, "ptq-dynamic")
    fit_at = out.index("trainer.fit(model, datamodule=dm)")
    quantize_at = out.index("quantized_model = quantization.fit(")
    assert fit_at < quantize_at < out.index("trainer.validate(model, datamodule=dm")
    assert 'approach="dynamic"' in out
    assert 'eval_func=lightning_eval_func(trainer, "validate", datamodule=dm)' in out
    assert "model = quantized_lightning_module(quantized_model, model)" in out


def test_dynamic_quantization_without_an_evaluation_converts_once():
    text = ARGPARSE_TRAINER.replace(
        "    trainer.test(test_dataloaders=train_loader)\n",
        "    torch.save(model.state_dict(), 'm.pt')\n",
    )
    out = rewrite(text, "ptq-dynamic")
    assert "eval_func" not in out and "lightning_eval_func" not in out
    assert out.index("quantized_lightning_module(") < out.index("torch.save(")


def test_post_training_under_a_lightning_cli_is_refused():
    with pytest.raises(NeuralCoderError, match="LightningCLI builds the module"):
        rewrite(CLI_NO_DEFAULTS, "ptq-dynamic")


def test_qat_in_mixed_precision_goes_ahead_and_in_half_weights_is_refused():
    """`bf16-mixed` trains under autocast, which the runtime's QAT handles; `bf16-true`
    keeps the weights in bf16, which no int8 conversion takes."""
    mixed = (
        script_path("lightning_fit.py")
        .read_text()
        .replace('accelerator="cpu",', 'accelerator="cpu",\n        precision="bf16-mixed",')
    )
    rewrite(mixed, "qat")
    with pytest.raises(NeuralCoderError, match="half precision"):
        rewrite(mixed.replace("bf16-mixed", "bf16-true"), "qat")
    rewrite(mixed.replace("bf16-mixed", "bf16-true"), "pruning")


def test_a_module_built_inside_fit_is_refused():
    text = ARGPARSE_TRAINER.replace(
        "trainer.fit(model, train_loader)", "trainer.fit(Net(), train_loader)"
    )
    with pytest.raises(NeuralCoderError, match="built inside the call") as error:
        rewrite(text, "pruning")
    assert "model = LitModel" in error.value.hint


def test_a_trainer_held_on_self_and_a_cli_built_module_as_teacher():
    text = (
        MODULE
        + """
class Runner:
    def __init__(self):
        self.trainer = pl.Trainer(max_epochs=1)

    def run(self, model, loader):
        self.trainer.fit(model, loader)
"""
    )
    assert "self.trainer.callbacks.append(CompressionCallback(" in rewrite(text, "pruning")
    with pytest.raises(NeuralCoderError, match="LightningCLI builds cli.model"):
        rewrite(CLI_RUN_FALSE, "distillation")


def test_a_trainer_given_a_model_id_needs_a_teacher_that_builds_one():
    text = script_path("model_id_trainer.py").read_text()
    with pytest.raises(NeuralCoderError, match="builds the model from args.model_name_or_path"):
        rewrite(text, "distillation")
    out = rewrite(
        text, "distillation", teacher='DistilBertForSequenceClassification.from_pretrained("t")'
    )
    assert "with_distillation(trainer, compression_callback.compression_manager)" in out


def test_a_cli_under_the_inc_target_prepares_with_inc():
    options = build_options("pruning", "inc", {}, {})
    out, report = rewrite_source(Path("lit.py"), CLI_NO_DEFAULTS, options)
    assert report.status is Status.TRANSFORMED
    assert "prepare=prepare_compression" in out
    assert "from neural_compressor.training import prepare_compression" in out


FABRIC_STYLE = """
from functools import partial

import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class LoopTrainer:
    def fit(self, model, loader, epochs=2, accumulate=2):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(epochs):
            for i, batch in enumerate(loader):
                if i % accumulate == 0:
                    optimizer.step(partial(self.training_step, model=model, batch=batch))
                    optimizer.zero_grad()
                else:
                    self.training_step(model=model, batch=batch)

    def training_step(self, model, batch):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss


def main(loader):
    LoopTrainer().fit(Net(), loader)
"""


def test_a_backward_run_as_the_optimizer_closure_gets_the_step_hooks_around_it():
    """The gradients exist only inside the closure: the hook that reads them follows the
    backward there, the one after the step follows the step call; the direct call on
    accumulation steps is the same path (the method reads self.compression_manager)."""
    out = rewrite(FABRIC_STYLE, "pruning")
    lines = [line.strip() for line in out.splitlines()]
    backward = lines.index("loss.backward()")
    assert (
        lines[backward + 1]
        == "self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder"
    )
    step = lines.index("optimizer.step(partial(self.training_step, model=model, batch=batch))")
    assert (
        lines[step + 1]
        == "self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder"
    )
    assert out.count("on_before_optimizer_step") == 1 and out.count("on_after_optimizer_step") == 1


def test_a_closure_defined_away_from_its_step_call_is_refused_with_the_reason():
    """`optimizer.step(closure)` calls the closure without arguments: a closure defined
    at module level cannot be handed the compression manager of the training function."""
    text = """
import torch

model = torch.nn.Linear(4, 2)
optimizer = torch.optim.LBFGS(model.parameters())
batch = None


def closure():
    optimizer.zero_grad()
    loss = model(batch[0]).sum()
    loss.backward()
    return loss


def train(loader):
    global batch
    for batch in loader:
        optimizer.step(closure)
"""
    with pytest.raises(NeuralCoderError, match="runs as the closure of optimizer.step") as error:
        rewrite(text, "pruning")
    assert "functools.partial" in error.value.hint


@pytest.mark.parametrize(
    "defaults",
    [
        "seed_everything_default=1",  # trainer_defaults= added
        "trainer_defaults=DEFAULTS",  # {**(DEFAULTS), "callbacks": [...]}
        'trainer_defaults={"max_epochs": 1}',  # a "callbacks" entry appended
        'trainer_defaults={"callbacks": [Keep()]}',  # the callback appended to the list
    ],
)
def test_revert_gives_a_lightning_cli_back(defaults):
    from neural_coder.revert import revert_source

    text = CLI_NO_DEFAULTS.replace("seed_everything_default=1", defaults)
    text += "\n\nDEFAULTS = {}\nKeep = dict\n"
    out = rewrite(text, "pruning")
    assert out.count("compression_callback") == 2  # bound, and handed to the CLI
    original, _ = revert_source(Path("lit.py"), out)
    assert original == text


@pytest.mark.parametrize(
    ("approach", "reason"),
    [("pruning>qat", "runs its own"), ("pruning>ptq-static", "PyTorch Lightning trains")],
)
def test_multi_shot_pipelines_under_lightning_are_refused(approach, reason):
    with pytest.raises(NeuralCoderError, match=reason):
        rewrite(ARGPARSE_TRAINER, approach)


def test_a_later_prediction_from_a_checkpoint_is_refused():
    # trainer.test(model) hands the Trainer the converted module; predict(ckpt_path=) would
    # then load float weights into it
    text = WITH_FORWARD + "    trainer.predict(dataloaders=train_loader, ckpt_path='best')\n"
    for approach in ("ptq-static", "bf16"):
        with pytest.raises(NeuralCoderError, match="trainer.predict at line .* ckpt_path='best'"):
            rewrite(text, approach)
