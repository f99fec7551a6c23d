"""Frozen weights and pruning, run end to end: a LoRA model whose base weights are all
frozen is refused (nothing would be pruned), a model with one frozen part is pruned
where it trains."""

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
    for approach in ("pruning", "pruning+qat"):
        result = run_cli("optimize", script, "--approach", approach)
        assert result.exit_code == 1, result.output
        assert f"lora_mark_trainable.py:{line}:" in result.output
        assert "mark_only_lora_as_trainable(model)" in result.output
        assert (
            "nothing would be pruned" in result.output and "merging its adapters" in result.output
        )
        assert script.read_text() == source
