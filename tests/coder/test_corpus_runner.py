"""tools/corpus_runner.py on two of our own samples: every pair is run on a copy, the
rewrites are checked (compile, no new undefined name, second run a no-op) and a refusal
is classified with its message."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import pytest

from tests.conftest import ROOT, SAMPLES


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location(
        "corpus_runner", ROOT / "tools" / "corpus_runner.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus_runner"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_two_samples_two_approaches(runner, tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("one_epoch_helper.py", "ptq_cnn_eval.py"):
        shutil.copy(SAMPLES / name, folder / name)
    before = {p.name: p.read_text() for p in folder.iterdir()}
    out = tmp_path / "out.json"
    code = runner.main(
        [str(folder), "--approaches", "pruning,ptq-static", "--json", str(out), "--details"]
    )
    assert code == 0
    assert {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".py"} == before
    outcomes = {
        (o["script"].rsplit("/", 1)[-1], o["approach"]): o for o in json.loads(out.read_text())
    }
    assert set(outcomes) == {(s, a) for s in before for a in ("pruning", "ptq-static")}
    trained = outcomes["one_epoch_helper.py", "pruning"]
    assert trained["status"] == "changed", trained["message"]
    assert trained["compiles"] and trained["no_undefined"] and trained["second_run_noop"]
    quantized = outcomes["ptq_cnn_eval.py", "ptq-static"]
    assert quantized["status"] == "changed", quantized["message"]
    assert quantized["compiles"] and quantized["no_undefined"] and quantized["second_run_noop"]
    # an eval-only script has no training loop to prune: refused, with a class and a message
    refused = outcomes["ptq_cnn_eval.py", "pruning"]
    assert refused["status"] == "refused"
    assert refused["reason"] not in ("", "other", "crash") and refused["message"]
    printed = capsys.readouterr().out
    assert "pruning" in printed and "ptq-static" in printed and "ALL" in printed
    assert f"[{refused['reason']}] pruning" in printed


def test_entries_file_and_classes(runner, tmp_path):
    (tmp_path / "repo").mkdir()
    script = tmp_path / "repo" / "train.py"
    script.write_text("import torch\n")
    listing = tmp_path / "ENTRIES.tsv"
    listing.write_text("style\tpath\nplain\trepo/train.py\n")
    assert runner.find_entries([tmp_path]) == [(script, tmp_path / "repo")]
    assert runner.classify("the loss depends on several models (D, G)") == "ambiguous-model"
    assert runner.classify("internal error: the rewrite would use undefined names (x)") == (
        "internal-error"
    )
