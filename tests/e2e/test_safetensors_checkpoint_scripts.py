"""A best-epoch checkpoint kept with safetensors, after QAT: the rewritten script saves
the fake-quant state dict as plain tensors (safetensors refuses it as it is: observers
shared by torch.fx), reloads it before training ends, and its export instance loads the
file as the int8 model; a separate script converts the same file with `structure_for`."""

from __future__ import annotations

from safetensors.torch import load_file

from neural_coder.runtime import structure_for
from neural_coder.runtime.plain_tensors import ENTRY
from tests.e2e.runner import rewrite_and_run_script, sample_module

NAME = "safetensors_best_checkpoint.py"


def test_the_qat_checkpoint_goes_through_safetensors_and_exports_int8(tmp_path):
    run, summary = rewrite_and_run_script(tmp_path, NAME, "--approach", "qat")
    assert run.returncode == 0, run.stderr[-2000:]
    assert summary["quantized_modules"] >= 3, summary
    assert "exported: torch.ao.nn.quantized" in run.stdout, run.stdout[-2000:]
    saved = load_file(tmp_path / "best.safetensors")
    assert ENTRY in saved
    int8, state = structure_for(saved, sample_module(NAME).SmallConvNet())
    int8.load_state_dict(state)
    assert "quantized" in type(int8.head).__module__
