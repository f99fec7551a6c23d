"""`auto` without running scripts: the choice rule, the figures read from records,
the candidates' texts, and the refusals that happen before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.auto import AutoOptions, auto_source
from neural_coder.auto.candidates import build_candidates, options_for
from neural_coder.auto.choose import CandidateResult, choose, figures_from
from neural_coder.auto.run import RunResult
from neural_coder.errors import NeuralCoderError
from neural_coder.options import PTQOptions, build_options
from neural_coder.runtime import cpu
from tests.conftest import SAMPLES, run_cli

SCRIPTS = Path(__file__).parent / "scripts"


def _measured(name, throughput, accuracy=None, baseline=None, higher_is_better=True):
    return CandidateResult(
        name,
        "measured",
        throughput=throughput,
        accuracy=accuracy,
        baseline=baseline,
        higher_is_better=higher_is_better,
    )


def test_the_fastest_within_the_goal_wins():
    results = [
        _measured("fp32", 100.0),
        _measured("ptq-dynamic", 300.0, accuracy=97.0, baseline=100.0),  # 3 % lost
        _measured("ptq-static", 200.0, accuracy=99.5, baseline=100.0),
    ]
    winner, checked, fp32_accuracy, message = choose(results, "relative", 0.01)
    assert (winner, checked, fp32_accuracy) == ("ptq-static", True, 100.0)
    assert results[1].within_goal is False and results[2].within_goal is True
    assert results[2].speedup == 2.0 and results[2].accuracy_change == pytest.approx(-0.005)
    assert "ptq-static is the fastest" in message
    assert choose(results, "absolute", 5.0)[0] == "ptq-dynamic"


def test_lower_is_better_metrics_and_nothing_beating_fp32():
    results = [
        _measured("fp32", 100.0),
        _measured("ptq-dynamic", 150.0, accuracy=2.2, baseline=2.0, higher_is_better=False),
    ]
    winner, _, _, message = choose(results, "relative", 0.01)
    assert winner is None and "nothing beats fp32" in message
    assert choose(results, "relative", 0.2)[0] == "ptq-dynamic"


def test_without_accuracy_the_fastest_wins_and_the_message_says_unchecked():
    results = [_measured("fp32", 100.0), _measured("ptq-dynamic", 150.0)]
    winner, checked, _, message = choose(results, "relative", 0.01)
    assert winner == "ptq-dynamic" and checked is False and "accuracy not checked" in message


def test_figures_come_from_the_records():
    result = CandidateResult("ptq-static")
    run = RunResult(
        records=[
            {"kind": "fit", "baseline_metric": 0.9, "final_metric": 0.89, "approach": "static",
             "higher_is_better": True, "tuning": "goal met"},
            {"kind": "benchmark", "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "throughput": 50.0,
             "batch_size": 8, "size_bytes": 1234},
        ],
        returncode=0,
        seconds=1.5,
    )  # fmt: skip
    figures_from(result, run)
    assert result.status == "measured"
    assert (result.accuracy, result.baseline, result.p99_ms, result.size_bytes) == (
        0.89,
        0.9,
        3.0,
        1234,
    )
    none_returned = CandidateResult("ptq-static")
    run.records[0] = {"kind": "fit", "approach": None, "tuning": "goal not met"}
    figures_from(none_returned, run)
    assert none_returned.status == "no model" and "goal not met" in none_returned.reason
    crashed = CandidateResult("bf16")
    figures_from(crashed, RunResult(returncode=1, log_tail="Traceback ... boom"))
    assert crashed.status == "failed" and "boom" in crashed.reason


def test_candidate_texts_are_optimize_s_output_plus_a_benchmark_call():
    path = SCRIPTS / "cnn_eval.py"
    text = path.read_text()
    fp32, dynamic = build_candidates(path, text, ("ptq-dynamic",), PTQOptions())
    assert fp32.final_text is None
    assert (
        fp32.measuring_text
        == rewrite_source(path, text, build_options("benchmark", None, {}, {}))[0]
    )
    final, _ = rewrite_source(path, text, options_for("ptq-dynamic", PTQOptions()))
    assert dynamic.final_text == final
    fit = dynamic.measuring_text.index("quantization.fit(")
    assert fit < dynamic.measuring_text.index("benchmark.fit(")  # times the fit's model


def test_bf16_is_skipped_with_the_reason_where_the_cpu_lacks_it(monkeypatch):
    info = cpu.cpu_info()
    plain = cpu.CPUInfo("Plain CPU", frozenset({"avx2"}), info.logical_cpus, info.physical_cores)
    monkeypatch.setattr(cpu, "cpu_info", lambda: plain)
    path = SCRIPTS / "cnn_eval.py"
    bf16 = build_candidates(path, path.read_text(), ("bf16",), PTQOptions())[1]
    assert bf16.status == "skipped" and bf16.measuring_text is None
    assert "avx512_bf16" in bf16.reason and "Plain CPU" in bf16.reason


def test_an_already_compressed_script_points_to_revert():
    text, _ = rewrite_source(
        Path("x.py"), (SAMPLES / "ptq_cnn_eval.py").read_text(), build_options("bf16", None, {}, {})
    )
    with pytest.raises(NeuralCoderError, match="neural-coder revert"):
        auto_source(Path("x.py"), text)


def test_unknown_approaches_are_a_usage_error(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print(1)\n")
    result = run_cli("auto", script, "--approaches", "ptq-dynamic,qat")
    assert result.exit_code == 2 and "qat" in result.output
    with pytest.raises(NeuralCoderError):
        AutoOptions(criterion="relative", tolerable_loss=-1.0).check()
