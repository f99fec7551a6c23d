"""`neural-coder auto` end to end on small scripts: every candidate runs in its own
process, the table and the JSON report agree, the winner is the fastest within the
accuracy goal by the JSON figures, and the file written is `optimize --approach
<winner>`. No timing is asserted: which candidate wins depends on the machine.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from neural_coder.api import rewrite_source
from neural_coder.auto import AutoOptions, auto_file
from neural_coder.auto.candidates import bf16_unavailable
from neural_coder.auto.choose import within_goal
from neural_coder.auto.table import render
from neural_coder.options import build_options
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"
CANDIDATES = ["fp32", "ptq-dynamic", "ptq-static", "bf16"]


def _run_auto(tmp_path: Path, name: str, *extra: str) -> tuple[str, dict, Path, str]:
    script = tmp_path / name
    shutil.copy(SCRIPTS / name, script)
    original = script.read_text()
    report = tmp_path / "auto.json"
    result = run_cli("auto", script, "--report", report, *extra)
    assert result.exit_code == 0, result.output
    return result.output, json.loads(report.read_text()), script, original


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    # the script's own arguments reach every candidate's run (batch size 16, not 32)
    return _run_auto(tmp_path_factory.mktemp("cnn"), "cnn_eval.py", "--", "--batch-size", "16")


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    return _run_auto(tmp_path_factory.mktemp("transformer"), "transformer_infer.py")


def _row(output: str, name: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 2 and cells[0].removesuffix(" *") == name:
            return cells
    raise AssertionError(f"no table row for {name}:\n{output}")


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_every_candidate_runs_and_the_table_shows_the_json_figures(sample, request):
    output, report, _, _ = request.getfixturevalue(sample)
    names = [c["name"] for c in report["candidates"]]
    assert names == CANDIDATES
    for c in report["candidates"]:
        if c["name"] == "bf16" and bf16_unavailable() is not None:
            assert c["status"] == "skipped" and "avx512_bf16" in c["reason"]
            continue
        assert c["seconds"] is not None, c  # it ran
        assert c["status"] in ("measured", "no model"), c
        assert c["throughput"] > 0 and c["size_bytes"] > 0
        latency = c["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
        row = _row(output, c["name"])
        assert row[1] == c["status"]
        assert row[3:7] == [
            _number(latency["p50"], 3),
            _number(latency["p90"], 3),
            _number(latency["p99"], 3),
            _number(c["throughput"], 1),
        ]
        if c["speedup"] is not None:
            assert row[8] == f"{c['speedup']:.2f}x"
        if c["status"] == "measured" and c["name"] != "fp32":
            assert row[2].startswith(f"{c['accuracy']:.4g} (")
    assert report["accuracy_checked"] is True  # both scripts evaluate their model
    assert _row(output, "fp32")[2] == f"{report['fp32_accuracy']:.4g}"
    if sample == "cnn":
        assert {c["batch_size"] for c in report["candidates"] if c["batch_size"]} == {16}


@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_the_winner_is_the_fastest_within_the_goal_and_is_what_optimize_writes(sample, request):
    output, report, script, original = request.getfixturevalue(sample)
    fp32 = report["fp32_accuracy"]
    goal = report["goal"]
    eligible = []
    for c in report["candidates"]:
        if c["status"] != "measured":
            continue
        if c["name"] != "fp32":
            expected = within_goal(
                c["accuracy"],
                fp32,
                c["higher_is_better"],
                goal["criterion"],
                goal["tolerable_loss"],
            )
            assert c["within_goal"] is expected
            if not expected:
                continue
        eligible.append(c)
    fastest = max(eligible, key=lambda c: c["throughput"])["name"]
    if fastest == "fp32":
        assert report["winner"] is None and not report["written"]
        assert "nothing beats fp32" in output
        assert script.read_text() == original
        return
    assert report["winner"] == fastest
    assert _row(output, fastest)[0] == f"{fastest} *"
    expected, _ = rewrite_source(script, original, build_options(fastest, None, {}, {}))
    assert script.read_text() == expected
    assert Path(f"{script}.bak").read_text() == original
    assert not list(script.parent.glob(".*neural-coder-auto*"))  # temporary copies are gone


def test_a_refused_candidate_is_listed_with_the_engine_s_reason(tmp_path):
    script = tmp_path / "lora_infer.py"
    shutil.copy(SCRIPTS / "lora_infer.py", script)
    original = script.read_text()
    events: list[tuple[str, str]] = []
    result = auto_file(
        script,
        AutoOptions(approaches=("ptq-dynamic",)),
        progress=lambda name, event: events.append((name, event)),
    )
    fp32, ptq = result.candidates
    assert fp32.status == "measured" and fp32.throughput
    assert ptq.status == "refused" and "PEFT adapters" in ptq.reason and ptq.seconds is None
    assert result.winner is None and "nothing beats fp32" in result.message
    assert script.read_text() == original and not Path(f"{script}.bak").exists()
    assert [e for n, e in events if n == "fp32"] == [
        "rewritten",
        "started",
        "benchmark",
        "finished",
    ]
    assert ("ptq-dynamic", "finished") in events

    console = Console(record=True, width=200)
    render(result, console)
    text = console.export_text()
    assert re.search(r"ptq-dynamic\s+│ refused", text)
    assert "ptq-dynamic refused:" in text and "PEFT adapters" in text
    data = result.to_dict()
    assert data["candidates"][1]["status"] == "refused"
    assert "PEFT adapters" in data["candidates"][1]["reason"]
