"""timm-style `loss_scaler(loss, optimizer, ...)`: the backward and the optimizer step in one call."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.analysis import analyze, parse_source
from neural_coder.analysis.backward_calls import find_backward_calls
from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from tests.conftest import script_path


def _backward_lines(text: str) -> list[int]:
    source = parse_source(Path("s.py"), text)
    facts = analyze(source)
    return [source.line(c) for c in find_backward_calls(facts.index)]


def test_the_scaler_call_is_the_backward_and_the_class_body_is_not():
    text = script_path("native_scaler_loop.py").read_text()
    lines = text.splitlines()
    call = next(i for i, line in enumerate(lines, 1) if line.strip() == "loss_scaler(")
    assert _backward_lines(text) == [call]  # not the .backward() inside NativeScaler.__call__


def test_a_scaler_of_features_is_not_a_training_step():
    text = "def prepare(x, y, feature_scaler):\n    return feature_scaler(x, y)\n"
    assert _backward_lines(text) == []


def test_a_scaler_call_sharing_its_line_is_refused():
    text = script_path("native_scaler_loop.py").read_text()
    one_line = text.replace(
        "        loss_scaler(\n            loss,\n            optimizer,\n            clip_grad=clip,\n"
        "            parameters=model.parameters(),\n"
        "            update_grad=(data_iter_step + 1) % accum_iter == 0,\n        )\n",
        "        if True: loss_scaler(loss, optimizer, update_grad=(data_iter_step + 1) % accum_iter == 0)\n",
    )
    assert one_line != text
    with pytest.raises(NeuralCoderError, match="shares its line"):
        rewrite_source(Path("s.py"), one_line, build_options("pruning", "runtime", {}, {}))
