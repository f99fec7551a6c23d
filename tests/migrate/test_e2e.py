"""Migrate the 1.x acceptance scripts and our own 1.x samples with `--target runtime`,
run the migrated copies on the bundled runtime, and check what the compression did:
sparsity per layer, int8 modules, the distillation the runtime reports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neural_coder.transforms.migrate_1x import migrate_source
from tests.conftest import SAMPLES
from tests.inc.interop import requires_inc, run_under_inc

pytestmark = pytest.mark.e2e

LEGACY_SAMPLES = SAMPLES / "legacy"

# Appended to the migrated copy: facts about the object the script ended with.
FACTS = """

def _nc_facts(result):
    import json
    import torch

    module = getattr(result, "model", result)
    facts = {"quantized": [], "sparsity": {}, "bf16": 0}
    for name, sub in module.named_modules():
        kind = type(sub).__module__
        if ".quantized" in kind and "Quant" not in type(sub).__name__:
            facts["quantized"].append(name)
        weight = getattr(sub, "weight", None)
        if callable(weight):
            weight = weight()
        if isinstance(weight, torch.Tensor) and weight.dim() > 1:
            if weight.is_quantized:
                weight = weight.dequantize()
            facts["sparsity"][name] = float((weight == 0).float().mean())
            facts["bf16"] += int(weight.dtype == torch.bfloat16)
    print("NC_FACTS " + json.dumps(facts))


_nc_facts({result})
"""


TARGETS = ["runtime", pytest.param("inc", marks=[pytest.mark.inc, requires_inc])]


def migrate_and_run(
    tmp_path: Path,
    folder: Path,
    script: str,
    result: str,
    *args: str,
    target: str = "runtime",
    env: dict[str, str] | None = None,
) -> tuple[dict, dict | None, str]:
    """Copy the folder's scripts and yaml files, migrate `script` for `target`, run it
    (on the runtime, or on Intel Neural Compressor 2.x in its own environment); return
    the facts about `result`, the runtime's JSON summary (when it wrote one) and stdout."""
    for item in folder.iterdir():
        if item.suffix in (".py", ".yaml"):
            shutil.copy(item, tmp_path / item.name)
    path = tmp_path / script
    migrated = migrate_source(path.read_text(), path, target)
    assert migrated.changed
    other = "neural_compressor" if target == "runtime" else "neural_coder"
    assert not re.search(rf"^\s*(from|import) {other}\b", migrated.code, re.M)
    path.write_text(migrated.code + FACTS.replace("{result}", result))
    summary = tmp_path / "summary.json"
    if target == "inc":
        run = run_under_inc(path, tmp_path, env=env, args=args)
    else:
        variables = {**os.environ, "NEURAL_CODER_SUMMARY": str(summary), "PYTHONHASHSEED": "0"}
        run = subprocess.run(
            [sys.executable, script, *args],
            cwd=tmp_path,
            env={**variables, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    line = next(x for x in run.stdout.splitlines() if x.startswith("NC_FACTS "))
    facts = json.loads(line[len("NC_FACTS ") :])
    return facts, json.loads(summary.read_text()) if summary.exists() else None, run.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_ptq_argparse_main(tmp_path, target):
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "ptq_argparse_main.py", "result", target=target
    )
    assert len(facts["quantized"]) >= 3, facts


@pytest.mark.parametrize("target", TARGETS)
def test_ptq_argparse_main_benchmark(tmp_path, target):
    facts, _, out = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "ptq_argparse_main.py", "result", "--benchmark", target=target
    )
    assert facts["quantized"]


@pytest.mark.parametrize("target", TARGETS)
def test_ptq_dynamic_v1(tmp_path, target):
    facts, _, out = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "ptq_dynamic_v1.py", "q_model", target=target
    )
    assert facts["quantized"], facts
    assert "int8 accuracy" in out


@pytest.mark.parametrize("target", TARGETS)
def test_qat_main(tmp_path, target):
    facts, _, _ = migrate_and_run(tmp_path, LEGACY_SAMPLES, "qat_main.py", "result", target=target)
    # the Linear is quantization-aware trained and converted
    assert any(name.endswith("fc") for name in facts["quantized"]), facts
    if target == "runtime":
        # op_wise pins `conv` to fp32 (QuantizationAwareTrainingConfig(op_name_dict=...)).
        # Measured: INC 2.6 converts `conv` anyway, with op_name_dict or op_type_dict alike.
        assert not any(name.endswith("conv") for name in facts["quantized"]), facts


@pytest.mark.parametrize("target", TARGETS)
def test_prune_helper_fn(tmp_path, target):
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "prune_helper_fn.py", "model", target=target
    )
    assert facts["sparsity"]["fc1"] == pytest.approx(0.5, abs=0.03)
    assert facts["sparsity"]["fc2"] == pytest.approx(0.6, abs=0.03)
    assert facts["sparsity"]["head"] == 0.0


@pytest.mark.parametrize("target", TARGETS)
def test_distill_yaml_loss(tmp_path, target):
    _, summary, out = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "distill_yaml_loss.py", "distilled", target=target
    )
    assert "student accuracy" in out
    if target == "runtime":
        assert summary is not None and summary["techniques"] == ["distillation"]
        assert summary["distillation_loss_types"] == ["CE", "KL"]
        assert summary["temperature"] == 4.0


@pytest.mark.parametrize("target", TARGETS)
def test_distill_intermediate(tmp_path, target):
    facts, summary, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "distill_intermediate.py", "result", target=target
    )
    assert facts["quantized"] == []
    if target == "runtime":
        assert summary is not None and summary["techniques"] == ["distillation"]
        assert summary["distillation_loss_type"] == "IntermediateLayersKnowledgeDistillationLoss"
        assert summary["distillation_steps"] > 0


@pytest.mark.parametrize("target", TARGETS)
def test_mixed_precision_bf16(tmp_path, target):
    # FORCE_BF16=1: convert even where this CPU has no bf16 speed-up (INC and the runtime
    # both return None otherwise, as 1.x did when no config met the goal)
    facts, _, out = migrate_and_run(
        tmp_path,
        LEGACY_SAMPLES,
        "mixed_precision_bf16.py",
        "bf16_model",
        target=target,
        env={"FORCE_BF16": "1"},
    )
    assert "bf16 agreement" in out


@pytest.mark.parametrize("target", TARGETS)
def test_scheduler_prune_then_ptq(tmp_path, target):
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "scheduler_prune_then_ptq.py", "opt_model", target=target
    )
    assert facts["quantized"], facts
    # pruned to 0.4 (names 0.weight, 2.weight), then quantized: the zeros stay zeros
    assert facts["sparsity"]["0"] == pytest.approx(0.4, abs=0.03)
    assert facts["sparsity"]["2"] == pytest.approx(0.4, abs=0.03)


@pytest.mark.parametrize("target", TARGETS)
def test_prune_builtin_loop(tmp_path, target):
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "prune_builtin_loop.py", "pruned", target=target
    )
    # the yaml's pruning.train loop, written out, trains 3 epochs; the target 0.6 is
    # reached at end_epoch 2
    assert facts["sparsity"]["0"] == pytest.approx(0.6, abs=0.02)
    assert facts["sparsity"]["2"] == pytest.approx(0.6, abs=0.02)
    assert facts["sparsity"]["4"] == 0.0


# -- issue 10: real 1.x examples -------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_combination_printed_before_append(tmp_path, target):
    """`print(scheduler_combination)` is removed with a TODO; pruning + QAT still run."""
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "combine_printed.py", "opt_model", target=target
    )
    assert facts["quantized"], facts
    assert facts["sparsity"]["2"] == pytest.approx(0.5, abs=0.03)
    assert facts["sparsity"]["0"] == 0.0


@pytest.mark.parametrize("target", TARGETS)
def test_model_read_after_fit(tmp_path, target):
    """`quantizer.model.model` after fit reads the fp32 model the quantizer was given."""
    facts, _, out = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "ptq_read_after_fit.py", "q_model", target=target
    )
    assert facts["quantized"], facts
    assert "fp32 accuracy" in out and "int8 accuracy" in out


@pytest.mark.parametrize("target", TARGETS)
def test_calibration_from_the_evaluation_loader(tmp_path, target):
    """The yaml built the calibration loader from a dataset: the evaluation loader calibrates."""
    facts, _, _ = migrate_and_run(
        tmp_path, LEGACY_SAMPLES, "ptq_yaml_calibration.py", "q_model", target=target
    )
    assert {"0", "2"} <= set(facts["quantized"]), facts


@pytest.mark.parametrize("target", TARGETS)
def test_config_flag_without_default_reads_the_only_yaml(tmp_path, target):
    from .conftest import CASES

    facts, _, _ = migrate_and_run(
        tmp_path,
        CASES / "ptq_config_flag_only_yaml",
        "before.py",
        "q_model",
        "--config",
        "conf.yaml",
        target=target,
    )
    assert {"0", "2"} <= set(facts["quantized"]), facts
