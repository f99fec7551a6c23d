"""Rewrite inference scripts for post-training quantization / bf16 with the coder's API, run
them, and check from the runtime's JSON summary and the script's own output what `fit` did:
int8 modules where expected, the tuned metric within the accuracy criterion, the trials
recorded, and the script still printing its result (with the model `fit` returned)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

TOLERABLE_LOSS = 0.01  # the coder's default accuracy criterion: 1 % relative loss


@dataclass
class Run:
    stdout: str
    stderr: str
    summary: dict[str, Any]

    def printed(self, pattern: str) -> float:
        """The number of the last stdout line matching `pattern` (one group)."""
        found = re.findall(pattern, self.stdout)
        assert found, f"the script did not print {pattern!r}:\n{self.stdout[-2000:]}"
        return float(found[-1])


def rewrite_and_run(
    tmp_path: Path, name: str, approach: str, *args: str, ptq: dict[str, Any] | None = None
) -> Run:
    source = script_path(name)
    script = tmp_path / source.name
    options = build_options(approach, None, {}, {"ptq": ptq or {}})
    rewritten, report = rewrite_source(script, source.read_text(), options)
    assert report.status is Status.TRANSFORMED, report.message
    script.write_text(rewritten)
    done, summary = run_script(script, *args, timeout=300)
    return Run(done.stdout, done.stderr, summary)


def assert_tuned(summary: dict[str, Any], ops: int, absolute_loss: float | None = None) -> None:
    """`fit` tuned with the script's evaluation and returned a model: the metric meets
    the criterion (the default 1 % relative, or `absolute_loss`), every trial is
    recorded, and the `ops` quantizable modules are int8 except those the tuning kept
    in fp32."""
    baseline, final = summary["baseline_metric"], summary["final_metric"]
    assert baseline is not None and final is not None, summary
    if absolute_loss is None:
        assert final >= baseline * (1 - TOLERABLE_LOSS)
    else:
        assert final >= baseline - absolute_loss
    trials = summary["trials"]
    assert trials and [t["trial"] for t in trials] == list(range(1, len(trials) + 1))
    assert trials[-1]["met"] and trials[-1]["accuracy"] == final
    assert all(t["accuracy"] is not None for t in trials)
    assert summary["quantized_modules"] == ops - len(summary["fp32_ops"]) > 0, summary
    assert summary["size_after_bytes"] < summary["size_before_bytes"]


# -- samples/eval_only.py: a model and an evaluate() returning accuracy ----------
EVAL_ONLY_OPS = {"static": 3, "dynamic": 1}  # 2 convs + the Linear; the Linear alone
ACCURACY = r"accuracy: ([0-9.]+)"


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_eval_only(tmp_path, approach):
    run = rewrite_and_run(tmp_path, "eval_only.py", f"ptq-{approach}")
    summary = run.summary
    assert summary["approach"] == f"post_training_{approach}_quant"
    assert_tuned(summary, EVAL_ONLY_OPS[approach])
    # the script evaluates the model fit returned: the same number as the tuning's
    assert run.printed(ACCURACY) == pytest.approx(summary["final_metric"], abs=1e-4)


def test_eval_only_auto_tries_static_first(tmp_path):
    summary = rewrite_and_run(tmp_path, "eval_only.py", "ptq-auto").summary
    first = summary["trials"][0]
    assert first["options"]["approach"] == "post_training_static_quant"
    kind = "static" if summary["approach"] == "post_training_static_quant" else "dynamic"
    assert_tuned(summary, EVAL_ONLY_OPS[kind])


def test_eval_only_bf16_converts_only_where_it_pays(tmp_path):
    run = rewrite_and_run(tmp_path, "eval_only.py", "bf16")
    summary = run.summary
    assert summary["baseline_metric"] is not None
    if summary["bf16_modules"] == 0:
        # no bf16 gain on this CPU: refused with the reason, the script keeps fp32
        assert summary["bf16_refused"] and summary["final_metric"] is None
        assert summary["size_after_bytes"] == summary["size_before_bytes"]
        assert run.printed(ACCURACY) == pytest.approx(summary["baseline_metric"], abs=1e-4)
    else:
        assert summary["final_metric"] >= summary["baseline_metric"] * (1 - TOLERABLE_LOSS)
        assert run.printed(ACCURACY) == pytest.approx(summary["final_metric"], abs=1e-4)
    assert summary["quantized_modules"] == 0


# -- samples/hf_inference.py: a from_pretrained checkpoint, an agreement() metric -----------
@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_hf_inference(tmp_path, approach):
    run = rewrite_and_run(tmp_path, "hf_inference.py", f"ptq-{approach}")
    summary = run.summary
    # 2 layers x (q, k, v, attention output, intermediate, output) + pooler + classifier, and
    # the word, position and token type embeddings (int8 weight-only)
    assert_tuned(summary, 14 + 3)
    if approach == "static":  # FX cannot trace BERT: the eager path, and it says why
        assert summary["quantization_path"] == "eager" and summary["fx_fallback_reason"]
        assert "cannot be FX-traced" in run.stderr
    score = run.printed(r"agreement with fp32: ([0-9.]+)")
    assert score == pytest.approx(summary["final_metric"], abs=1e-3)


# -- samples/epoch_fn_style.py: quantized after its training loop ---------------------------
def test_epoch_fn_style_is_quantized_after_training(tmp_path):
    run = rewrite_and_run(tmp_path, "epoch_fn_style.py", "ptq-static")
    assert_tuned(run.summary, 4)  # conv1, conv2, fc1, fc2
    assert run.summary["quantization_path"] == "fx"
    # the script trained first (its log), and test() is the tuning's evaluation
    assert "Train Epoch: 2 [0/384]" in run.stdout
    assert run.printed(r"Accuracy: ([0-9.]+)") == pytest.approx(
        run.summary["trials"][-1]["accuracy"], abs=1e-4
    )


# -- samples/ptq_cnn_eval.py: argparse main, BatchNorm, a checkpoint, top-1 in percent ------
CNN_EVAL_OPS = {"static": 3, "dynamic": 1}  # stem conv, block conv, classifier
TOP1 = r"top-1 accuracy: ([0-9.]+)%"


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_cnn_eval_script(tmp_path, approach):
    run = rewrite_and_run(tmp_path, "ptq_cnn_eval.py", f"ptq-{approach}", "--batch-size", "32")
    summary = run.summary
    assert summary["baseline_metric"] == 100.0
    assert_tuned(summary, CNN_EVAL_OPS[approach])
    assert run.printed(TOP1) == pytest.approx(summary["final_metric"], abs=0.01)


def _write_hard_validation_set(tmp_path: Path) -> None:
    """The sample's checkpoint with a validation set of unconfident predictions: int8
    rounding flips some of them, so the tuning has to fall back (or give up)."""
    import torch

    spec = importlib.util.spec_from_file_location("ptq_cnn_eval", script_path("ptq_cnn_eval.py"))
    assert spec is not None and spec.loader is not None
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    sample.prepare(str(tmp_path / "ckpt.pt"), str(tmp_path / "unused.pt"))
    model = sample.ConvNet()
    model.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["state_dict"])
    model.eval()
    images = torch.randn(256, 3, 24, 24, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    torch.save({"images": images, "labels": labels}, tmp_path / "hard.pt")


def test_cnn_eval_script_tunes_and_never_returns_a_model_below_the_goal(tmp_path):
    _write_hard_validation_set(tmp_path)
    run = rewrite_and_run(
        tmp_path,
        "ptq_cnn_eval.py",
        "ptq-static",
        "--checkpoint",
        "ckpt.pt",
        "--data",
        "hard.pt",
        ptq={"criterion": "absolute", "tolerable_loss": 0.0},  # no flip allowed
    )
    summary = run.summary
    trials = summary["trials"]
    assert summary["baseline_metric"] == 100.0 and len(trials) > 1, summary
    assert trials[0]["fp32_ops"] == [] and not trials[0]["met"]
    assert all(t["fp32_ops"] for t in trials[1:])  # fallbacks
    if summary["final_metric"] is None:  # no config met the goal: the script keeps fp32
        assert summary["quantized_modules"] == 0 and "not met" in summary["tuning"]
        assert run.printed(TOP1) == 100.0
    else:
        assert_tuned(summary, CNN_EVAL_OPS["static"], absolute_loss=0.0)
        assert run.printed(TOP1) == pytest.approx(summary["final_metric"], abs=0.01)


def test_a_validation_run_quantizes_only_the_model_it_loads(tmp_path):
    """`run(model=...)` from a training script evaluates that model untouched; run from
    the command line, it loads the weights and evaluates (and saves) the int8 model."""
    import subprocess
    import sys

    script = tmp_path / "shared_val_run.py"
    script.write_text(script_path("shared_val_run.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    summary = run_script(script)[1]
    assert summary["quantized_modules"] > 0, summary
    check = (
        "import __main__, torch\n"
        "import shared_val_run as v\n"
        "__main__.Scorer = v.Scorer  # the script saved its model from __main__\n"
        "saved = torch.load('scorer_val.pt', weights_only=False)\n"
        "assert any('quantized' in type(m).__module__ for m in saved.modules())\n"
        "calls = []\n"
        "fit = v.quantization.fit\n"
        "v.quantization.fit = lambda *a, **k: calls.append(1) or fit(*a, **k)\n"
        "v.run(model=v.Scorer())\n"
        "assert calls == [], calls\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_model_loaded_before_its_data_is_calibrated_where_it_first_runs(tmp_path):
    """validate_checkpoint.py loads the weights, then builds its loader, then evaluates
    inline: the static fit goes after the loader, so it calibrates and the inline loop
    evaluates the int8 model."""
    script = tmp_path / "validate_checkpoint.py"
    script.write_text(script_path("validate_checkpoint.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] >= 2  # the conv (BatchNorm folded in) and the head
    assert re.search(r"evaluated .*torch\.ao\.nn\.(intrinsic\.)?quantized", run.stdout), run.stdout


def test_a_script_without_a_loader_is_calibrated_by_its_own_evaluation(tmp_path):
    """full_batch_graph.py trains and tests on whole tensors: the static fit runs the
    script's test() on the prepared model to calibrate, then tunes with it."""
    script = tmp_path / "full_batch_graph.py"
    script.write_text(script_path("full_batch_graph.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0, result.output
    run, summary = run_script(script, "--epochs", "5")
    assert summary["quantized_modules"] >= 2, summary
    assert summary["trials"] and summary["final_metric"] is not None
    # test() returns (loss, accuracy): tuned on the loss, lower is better
    assert summary["final_metric"] <= summary["baseline_metric"] * (1 + TOLERABLE_LOSS) + 1e-9
    assert "Test set results" in run.stdout
