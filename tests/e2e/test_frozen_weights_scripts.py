"""Frozen weights with pruning and QAT, run end to end: a LoRA model whose base weights
are all frozen is refused (nothing would be pruned, nothing quantized would be trained),
a model with one frozen part is pruned where it trains, and a frozen backbone under a new
head is quantized while the head trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

FREEZE = "    mark_only_lora_as_trainable(model)\n"


def test_a_head_only_freeze_is_pruned_where_the_model_trains(tmp_path: Path, monkeypatch):
    """`model.head.requires_grad_(False)` freezes one part: the rewrite goes through, the
    trained projection reaches the target sparsity and the frozen head is untouched."""
    source = script_path("lora_mark_trainable.py").read_text()
    assert FREEZE in source
    script = tmp_path / "head_frozen.py"
    script.write_text(source.replace(FREEZE, "    model.head.requires_grad_(False)\n"))
    result = run_cli("optimize", script, "--approach", "pruning")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    monkeypatch.setenv("STEPS", "16")
    run, summary = run_script(script)
    assert summary["sparsity"] > 0.3, summary
    state = torch.load(tmp_path / "lora_finetuned.pt", weights_only=True)
    assert (state["proj.weight"] == 0).float().mean() > 0.3
    assert (state["head.weight"] == 0).sum() == 0  # frozen: no gradient, no score


def test_mark_only_lora_as_trainable_refuses_pruning_and_leaves_the_file(tmp_path: Path):
    script = tmp_path / "lora_mark_trainable.py"
    source = script_path("lora_mark_trainable.py").read_text()
    script.write_text(source)
    line = source.splitlines().index(FREEZE.rstrip("\n")) + 1
    for approach in ("pruning", "pruning+qat", "qat"):
        result = run_cli("optimize", script, "--approach", approach)
        assert result.exit_code == 1, result.output
        assert f"lora_mark_trainable.py:{line}:" in result.output
        assert "mark_only_lora_as_trainable(model)" in result.output
        assert "merging its adapters" in result.output
        if "pruning" in approach:
            assert "nothing would be pruned" in result.output
        if "qat" in approach:
            assert "adapters left in fp32" in result.output
            assert "--approach ptq-dynamic" in result.output
        assert script.read_text() == source


def test_a_peft_model_refuses_qat_like_pruning(tmp_path: Path):
    """The PEFT sample (get_peft_model) is refused for QAT as for pruning: its base weights
    are frozen around the adapters."""
    script = tmp_path / "peft_lora_finetune.py"
    source = script_path("peft_lora_finetune.py").read_text()
    script.write_text(source)
    for approach in ("qat", "pruning"):
        result = run_cli("optimize", script, "--approach", approach)
        assert result.exit_code == 1, result.output
        assert "model has PEFT adapters (get_peft_model at line" in result.output
        assert "merge_and_unload()" in result.output
        assert script.read_text() == source


def test_a_frozen_backbone_under_a_new_head_is_quantized_while_the_head_trains(
    tmp_path: Path, monkeypatch
):
    """Every weight frozen in a loop, then `model.classifier = nn.Linear(...)`: QAT goes
    through; the run trains the head (its loss falls, the int8 model evaluated after it
    separates the classes), quantizes the whole model, leaves
    the frozen convolutions at the checkpoint's values (up to int8 rounding) and saves the
    int8 model."""
    script = tmp_path / "frozen_backbone_head.py"
    script.write_text(script_path("frozen_backbone_head.py").read_text())
    pretrained = _convnet_state()
    torch.save(pretrained, tmp_path / "pretrained_convnet.pt")
    result = run_cli("optimize", script, "--approach", "qat")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    monkeypatch.setenv("EPOCHS", "4")
    run, summary = run_script(script)
    assert summary["quantized_modules"] >= 3, summary  # both convolutions and the head
    losses = [float(line.split()[-1]) for line in run.stdout.splitlines() if "loss" in line]
    assert len(losses) == 4 and losses[-1] < losses[0], run.stdout
    # the quantized model is the one evaluated, and the head learnt the two classes
    assert float(run.stdout.split("val accuracy")[1].split()[0]) >= 0.8, run.stdout
    state = torch.load(tmp_path / "finetuned_convnet.pt", weights_only=False)
    assert state["classifier._packed_params._packed_params"][0].dtype == torch.qint8
    conv = state["features.0.weight"]
    assert conv.dtype == torch.qint8
    scale = conv.q_per_channel_scales().max() if conv.qscheme() in PER_CHANNEL else conv.q_scale()
    assert (conv.dequantize() - pretrained["features.0.weight"]).abs().max() <= scale


PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric)


def _convnet_state() -> dict[str, torch.Tensor]:
    """A checkpoint in the sample's layout (a 10-class head) as an earlier run saves it:
    the weights main() draws after its loaders, so the tiny head's run stays the one the
    sample shows converging."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convnet", script_path("frozen_backbone_head.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    torch.manual_seed(0)
    module.make_loaders()
    return module.SmallConvNet().state_dict()
