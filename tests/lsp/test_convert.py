"""The server's conversions (settings -> options, engine output -> text edits) and the VS Code
extension's manifest, checked against the engine's names."""

from __future__ import annotations

import json
import re

import pytest
from lsprotocol import types

from neural_coder.errors import ConfigError
from neural_coder.lsp import convert
from neural_coder.lsp.auto import auto_options
from neural_coder.survey import APPROACHES
from tests.lsp.helpers import REPO, apply_edits

EXTENSION = REPO / "extensions" / "vscode"


@pytest.mark.parametrize(
    "old,new",
    [
        ("a\nb\nc\n", "a\nx\ny\nb\nc\n"),
        ("a\nb\nc", "a\nb\nc\nd\n"),  # the last line had no newline
        ("a\nb\n", "b\n"),
        ("", "import x\n"),
        ("s = 'é😀'\nt = 1\n", "s = 'é😀'\nu = 2\nt = 1\n"),
    ],
)
def test_text_edits_turn_the_buffer_into_the_engine_output(old: str, new: str):
    assert apply_edits(old, convert.text_edits(old, new)) == new


def test_columns_are_utf16_code_units():
    assert convert.utf16_column("s = '😀' + x", 9) == 10


def test_settings_become_the_options_the_cli_flags_give():
    config = convert.settings_to_config(
        {
            "interpreter": "/venv/bin/python",
            "target": "inc",
            "pruning": {"targetSparsity": 0.7, "pattern": "1x1", "pruningType": ""},
            "distillation": {"teacher": None},
        }
    )
    assert config == {"target": "inc", "pruning": {"target_sparsity": 0.7, "pattern": "1x1"}}
    options = convert.options_for(config, "pruning")
    assert (options.target, options.pruning.target_sparsity, options.pruning.pattern) == (
        "inc",
        0.7,
        "1x1",
    )
    with pytest.raises(ConfigError, match="unknown key pruning.sparsity"):
        convert.settings_to_config({"pruning": {"sparsity": 0.7}})
    with pytest.raises(ConfigError, match="pattern"):
        convert.options_for(convert.settings_to_config({"pruning": {"pattern": "4y1"}}), "pruning")


def test_the_extension_offers_the_engine_approaches_and_settings_the_server_reads():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    core = (EXTENSION / "src" / "core.ts").read_text()
    listed = re.search(r"APPROACHES = \[(.*?)\]", core, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r'"([^"]+)"', listed) == [*APPROACHES, "migrate"]
    settings: dict = {}
    for key, spec in manifest["contributes"]["configuration"]["properties"].items():
        *sections, name = key.split(".")[1:]
        target = settings
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = spec["default"]
    for approach in APPROACHES:  # the defaults are valid options for every approach
        convert.options_for(convert.settings_to_config(settings), approach)
    auto = auto_options(settings)  # and for the Auto command, which reads `auto`
    assert auto.approaches == ("ptq-dynamic", "ptq-static", "bf16") and auto.args == ()


def test_diagnostics_are_capped():
    from pathlib import Path

    from neural_coder.survey import Span, Survey

    survey = Survey(path=Path("x.py"), legacy=[(Span(n, 0, n, 3), "use") for n in range(1, 200)])
    found = convert.diagnostics(survey, ["abc"] * 200)
    assert len(found) == convert.MAX_DIAGNOSTICS
    assert all(d.severity == types.DiagnosticSeverity.Warning for d in found)
