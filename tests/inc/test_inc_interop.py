"""Interop with Intel Neural Compressor 2.6: the same hand-written INC 2.x
scripts (tests/inc/scripts) run on INC and on neural_coder.runtime, and must
measure the same compression.

INC runs in its own environment (numpy<2), named by NEURAL_CODER_INC_PYTHON;
the INC tests are skipped with a reason when it is unset (tools/test.sh and CI
set it). The runtime-side checks need no INC and always run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.inc.interop import (
    INC_PYTHON_VARIABLE,
    ROOT,
    SCRIPTS,
    describe,
    inc_python,
    last_json,
    requires_inc,
    run_under_inc,
    run_under_runtime,
)

SCRIPT_NAMES = ["prune", "qat", "distill", "prune_qat"]
PRUNING_SCRIPTS = {"prune", "prune_qat"}
QAT_SCRIPTS = {"qat", "prune_qat"}


class _Runs:
    """Each script runs once per target per session; tests share the results."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.results: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, target: str, name: str) -> dict[str, Any]:
        key = (target, name)
        if key not in self.results:
            cwd = self.tmp.mktemp(f"{target}-{name}")
            runner = run_under_inc if target == "inc" else run_under_runtime
            proc = runner(SCRIPTS / f"{name}.py", cwd)
            assert proc.returncode == 0, describe(proc)
            result = last_json(proc)
            assert result["script"] == name and result["target"] == target, result
            self.results[key] = result
        return self.results[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    return _Runs(tmp_path_factory)


def block_tolerance(result: dict[str, Any]) -> float:
    """One 4x1 block per pruned layer, as a fraction of the pruned weights."""
    return (
        result["block_elements"]
        * len(result["pruned_layers_found"])
        / result["pruned_elements_total"]
    )


def check_common(name: str, r: dict[str, Any]) -> None:
    """What the compression must have done, whichever library ran the script."""
    assert r["cm_model_is_nn_module"], r  # `model = cm.model` is still callable as a module
    if name == "prune":
        assert r["pruned_layers_found"] == ["fc1", "fc2"], r
        assert r["sparsity"] == pytest.approx(r["target_sparsity"], abs=block_tolerance(r)), r
        assert r["zeros_in_4x1_blocks"] >= 0.999, r  # 4 output rows x 1 input column
        assert r["head_sparsity"] == 0.0, r  # the classifier head is left alone
        assert r["sparsity_by_step"][-1] == pytest.approx(
            r["target_sparsity"], abs=block_tolerance(r)
        )
        assert r["output_finite"], r
    if name == "prune_qat":
        tol = block_tolerance(r)
        assert r["sparsity_before_convert"] == pytest.approx(r["target_sparsity"], abs=tol), r
        # the pruned zeros survive int8 conversion (rounding may add a few more)
        assert r["target_sparsity"] - tol <= r["sparsity"] <= r["target_sparsity"] + 0.02, r
        assert r["zeros_in_4x1_blocks"] >= 0.95, r
    if name in QAT_SCRIPTS:
        assert r["int8_module_count"] > 0, r
        assert r["output_finite"], r
    if name == "qat":
        # the optimizer built on the float model keeps training the prepared model
        assert r["prepared_params_in_user_optimizer"] == r["prepared_trainable_params"] > 0, r
        assert r["layers_changed_by_training"], r
        assert r["kept_reference_output_finite"], r
    if name == "distill":
        assert r["distillation_active"], r
        assert r["on_after_compute_loss_returns"] == ["tensor"], r
        assert r["teacher_unchanged"], r


# -- INC 2.6 itself -----------------------------------------------------------


@pytest.mark.inc
@requires_inc
@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_on_inc(runs: _Runs, name: str) -> None:
    r = runs.get("inc", name)
    assert r["version"] == "2.6", r
    check_common(name, r)
    # INC 2.6 behaviours that generated `--target inc` code relies on (tests/inc/README.md)
    if name != "distill":
        assert r["on_after_compute_loss_returns"] == ["list[0]"], r  # [] without distillation
    wrapper = r.get("cm_model_type") or r["cm_model_type_after_train_end"]
    assert wrapper.startswith("neural_compressor.model.torch_model.PyTorch"), r
    if name == "qat":
        assert r["raw_model_int8_module_count"] == 0, r  # the user's original object stays float
        assert "GraphModule" in r["inner_model_type_after_train_end"], r


@pytest.mark.inc
@requires_inc
def test_inc_pruning_advances_only_through_on_after_optimizer_step(tmp_path: Path) -> None:
    proc = run_under_inc(
        SCRIPTS / "prune.py", tmp_path, env={"INTEROP_SKIP_AFTER_OPTIMIZER_STEP": "1"}
    )
    assert proc.returncode == 0, describe(proc)
    r = last_json(proc)
    assert r["skipped_after_optimizer_step"] is True
    assert r["sparsity"] == 0.0, r


@pytest.mark.inc
@requires_inc
def test_inc_needs_no_network(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode:
        pytest.skip("cannot make a network namespace here (unshare -rn)")
    python = inc_python()
    proc = subprocess.run(
        [unshare, "-rn", python, str(SCRIPTS / "prune_qat.py"), "--target", "inc"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    assert last_json(proc)["int8_module_count"] > 0


@pytest.mark.inc
@requires_inc
def test_run_under_inc_runs_an_arbitrary_script(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, json, numpy, torch, neural_compressor\n"
        "from neural_compressor.training import prepare_compression\n"
        "print(json.dumps({'inc': neural_compressor.__version__, 'numpy': numpy.__version__,"
        " 'torch': torch.__version__, 'cwd': os.getcwd(), 'x': os.environ.get('X')}))\n"
    )
    proc = run_under_inc(script, tmp_path, env={"X": "1"})
    assert proc.returncode == 0, describe(proc)
    r = last_json(proc)
    assert r["inc"] == "2.6" and r["numpy"].startswith("1.") and r["x"] == "1", r
    assert r["torch"].split("+")[0] == "2.13.0", r
    assert Path(r["cwd"]) == tmp_path


@pytest.mark.inc
@requires_inc
def test_make_inc_env_is_idempotent() -> None:
    env_dir = Path(inc_python()).parent.parent
    if not (env_dir / ".neural-coder-inc-stamp").is_file():
        pytest.skip(f"{INC_PYTHON_VARIABLE} names an environment not made by tools/make_inc_env.sh")
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "make_inc_env.sh"), str(env_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    assert "reusing" in proc.stderr, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(env_dir / "bin" / "python")


# -- our runtime, and the two side by side --------------------------------------


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_on_runtime(runs: _Runs, name: str) -> None:
    check_common(name, runs.get("runtime", name))


@pytest.mark.inc
@requires_inc
@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_same_compression_on_inc_and_runtime(runs: _Runs, name: str) -> None:
    inc, ours = runs.get("inc", name), runs.get("runtime", name)
    both = {"inc": inc, "runtime": ours}
    for result in both.values():
        check_common(name, result)
    if name in PRUNING_SCRIPTS:
        tol = block_tolerance(inc)
        assert ours["sparsity"] == pytest.approx(inc["sparsity"], abs=2 * tol), both
        assert ours["pruned_layers_found"] == inc["pruned_layers_found"], both
    if name in QAT_SCRIPTS:
        assert inc["int8_module_count"] > 0 and ours["int8_module_count"] > 0, both
    if name == "distill":
        assert inc["distillation_active"] and ours["distillation_active"], both
