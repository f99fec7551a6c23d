"""Training scripts that read nothing of the trained model after training, rewritten for
a post-training approach and run: the fit follows training and the compressed model is
saved; `neural_coder.runtime.load` brings it back into the float architecture as int8
(quantized modules) or bf16 (bf16 modules and weights)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from neural_coder.runtime import load
from neural_coder.runtime.bf16 import BF16Conv2d, BF16Linear
from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script


class SmallNet(nn.Module):
    """The architecture of samples/epoch_checkpoint_train.py (a load with strict keys
    checks that it is the same)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


class TinyLM(nn.Module):
    """The architecture of samples/iteration_loop_train.py."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(16, 32)
        self.hidden = nn.Linear(32, 32)
        self.head = nn.Linear(32, 16)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(self.embed(idx))))


class CharModel(nn.Module):
    """The architecture of samples/char_split_train.py (28 characters in its text)."""

    def __init__(self, vocab_size: int = 28) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, 32)
        self.proj = nn.Linear(32, 64)
        self.lm_head = nn.Linear(64, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple:
        logits = self.lm_head(nn.functional.gelu(self.proj(self.token_embedding(idx))))
        if targets is None:
            return logits, None
        return logits, nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def rewrite_and_run(tmp_path: Path, name: str, approach: str) -> tuple[str, dict]:
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "saves the compressed model" in result.output, result.output
    run, summary = run_script(script)
    assert "compressed model saved to" in run.stdout + run.stderr
    return run.stdout + run.stderr, summary


def dynamic_linears(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]


def test_a_cifar_style_script_saves_its_int8_model_beside_its_checkpoints(tmp_path):
    _, summary = rewrite_and_run(tmp_path, "epoch_checkpoint_train.py", "ptq-dynamic")
    assert summary["quantized_modules"] == 1  # the Linear; convolutions stay fp32 in dynamic
    folder = tmp_path / "checkpoint" / "neural_coder_ptq-dynamic"
    assert (tmp_path / "checkpoint" / "ckpt.pth").is_file()  # the script's own checkpoint
    model = load(folder, SmallNet())
    assert len(dynamic_linears(model)) == 1
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_a_bf16_model_saved_after_training_loads_back_as_bf16(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_BF16", "1")  # convert whatever this CPU measures
    _, summary = rewrite_and_run(tmp_path, "epoch_checkpoint_train.py", "bf16")
    assert summary["bf16_modules"] == 2
    model = load(tmp_path / "checkpoint" / "neural_coder_bf16", SmallNet())
    assert isinstance(model.conv, BF16Conv2d) and isinstance(model.fc, BF16Linear)
    assert model.fc.weight.dtype == torch.bfloat16
    assert model(torch.randn(2, 3, 8, 8)).dtype == torch.float32  # fp32 in and out


def test_a_trainer_run_method_saves_its_static_int8_model(tmp_path):
    _, summary = rewrite_and_run(tmp_path, "run_method_trainer.py", "ptq-static")
    assert summary["quantized_modules"] == 2
    fp32 = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 3))
    model = load(tmp_path / "neural_coder_output" / "ptq-static", fp32)
    quantized = [m for m in model.modules() if type(m).__module__.startswith("torch.ao.nn")]
    assert quantized, list(model.modules())
    assert model(torch.randn(4, 12)).shape == (4, 3)


@pytest.mark.parametrize("approach", ["ptq-dynamic"])
def test_a_module_level_iteration_loop_saves_after_its_break(tmp_path, approach):
    _, summary = rewrite_and_run(tmp_path, "iteration_loop_train.py", approach)
    assert summary["quantized_modules"] == 3  # the two Linears and the Embedding
    model = load(tmp_path / "out-tiny" / f"neural_coder_{approach}", TinyLM())
    assert len(dynamic_linears(model)) == 2
    assert isinstance(model.embed, torch.ao.nn.quantized.Embedding)
    assert model(torch.randint(0, 16, (2, 8))).shape == (2, 8, 16)


def test_a_get_batch_script_calibrates_on_its_own_val_batches(tmp_path):
    """No DataLoader: the static fit draws `get_batch("val")` batches at the fit and calls
    the model as the loop does (`model(X, Y)`); the saved model is static int8 and still
    answers both calls, with targets (a loss) and without (inference): tracing would
    have made the optional `targets` branch unconditional, so the eager path is taken."""
    _, summary = rewrite_and_run(tmp_path, "char_split_train.py", "ptq-static")
    assert summary["quantized_modules"] == 3  # the two Linears and the Embedding
    assert summary["quantization_path"] == "eager"
    model = load(tmp_path / "neural_coder_output" / "ptq-static", CharModel())
    static = [m for m in model.modules() if isinstance(m, torch.ao.nn.quantized.Linear)]
    assert len(static) == 2 and not dynamic_linears(model)
    assert model.proj.weight().dtype == torch.qint8
    idx = torch.randint(0, 28, (2, 16))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 16, 28) and loss.dim() == 0
    assert model(idx)[1] is None


def test_a_get_batch_script_times_bf16_on_one_of_its_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_BF16", "1")  # convert whatever this CPU measures
    _, summary = rewrite_and_run(tmp_path, "char_split_train.py", "bf16")
    assert summary["bf16_modules"] == 2
    model = load(tmp_path / "neural_coder_output" / "bf16", CharModel())
    assert isinstance(model.proj, BF16Linear) and isinstance(model.lm_head, BF16Linear)


def test_a_lightning_module_nothing_tests_after_fit_is_saved_and_loads_back_int8(tmp_path):
    """samples/lightning_fit.py without its test and save after `trainer.fit`: the static
    int8 LightningModule is saved on global rank 0 and loads back into its own class."""
    source = script_path("lightning_fit.py").read_text()
    tested = "    print(trainer.test(model, dataloaders=test_loader, verbose=False))\n"
    saved = "    if args.save:\n        torch.save(model.state_dict(), args.save)\n"
    assert tested in source and saved in source
    script = tmp_path / "lit_train.py"
    script.write_text(source.replace(tested, "").replace(saved, ""))
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0 and "trainer.is_global_zero holds" in result.output, result.output
    _, summary = run_script(script, "--epochs", "1")
    assert summary["quantized_modules"] >= 1
    spec = importlib.util.spec_from_file_location("lightning_fit", script_path("lightning_fit.py"))
    sample = importlib.util.module_from_spec(spec)  # main() runs only as __main__
    spec.loader.exec_module(sample)
    fp32 = sample.DigitClassifier(sample.Encoder())
    model = load(tmp_path / "neural_coder_output" / "ptq-static", fp32)
    assert type(model).__name__ == "DigitClassifier"
    assert any(isinstance(m, torch.ao.nn.quantized.Linear) for m in model.modules())
    x, _ = sample.synthetic_digits(4, 5).tensors
    assert model(x).shape == (4, 10)
