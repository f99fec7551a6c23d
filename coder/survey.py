"""What an editor shows about a script before anything is rewritten: where training (or
evaluation) happens, which approaches can be inserted there and why the others cannot,
and each use of the INC 1.x API — all with positions.

The same analysis and planning as `rewrite_source`, one parse for every approach; front
ends (the language server) call this instead of looking at code themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from neural_coder.analysis import Facts, analyze, parse_source
from neural_coder.analysis.evaluation import find_evaluations
from neural_coder.errors import NeuralCoderError
from neural_coder.files import line_length_for
from neural_coder.options import OptimizeOptions
from neural_coder.planning import make_plan

# the approaches an editor offers, as `--approach` spells them
APPROACHES = (
    "qat",
    "pruning",
    "distillation",
    "pruning+qat",
    "distillation+qat",
    "distillation+pruning",
    "distillation+pruning+qat",
    "ptq-static",
    "ptq-dynamic",
    "bf16",
)


class Cancelled(Exception):
    """The caller no longer wants the survey (the text changed under it)."""


@dataclass(frozen=True)
class Span:
    """Lines count from 1, columns from 0 (libcst's convention)."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Verdict:
    approach: str
    refusal: NeuralCoderError | None = None  # None: the approach can be inserted


@dataclass
class Survey:
    path: Path
    anchor: Span | None = None  # the training loop, the Trainer, or the evaluation
    anchor_kind: str = ""  # "training loop" | "Hugging Face Trainer" | "evaluation"
    verdicts: list[Verdict] = field(default_factory=list)
    legacy: list[tuple[Span, str]] = field(default_factory=list)  # INC 1.x API uses
    already_optimized: int | None = None  # line of existing compression code

    @property
    def possible(self) -> list[str]:
        return [v.approach for v in self.verdicts if v.refusal is None]


def survey_source(
    path: Path,
    text: str,
    options_for: Callable[[str], OptimizeOptions],
    cancelled: Callable[[], bool] = lambda: False,
    approaches: tuple[str, ...] = APPROACHES,
) -> Survey:
    """Raises ParseError for text that does not parse, Cancelled when `cancelled()` turns true."""
    source = parse_source(path, text)
    survey = Survey(path=path)
    if "neural_compressor" in text:
        from neural_coder.transforms.migrate_1x.analysis import legacy_uses

        survey.legacy = [(Span(*span), what) for _, what, span in legacy_uses(source.module)]
    _check(cancelled)
    facts = analyze(source)
    survey.already_optimized = facts.already_optimized
    if facts.already_optimized is not None:
        return survey
    survey.anchor, survey.anchor_kind = _anchor(facts, text)
    if survey.anchor is None and not any(f.kind == "model" for f in facts.found):
        return survey  # no model, no loop, no evaluation: nothing to offer
    line_length = line_length_for(path)
    for approach in approaches:
        _check(cancelled)
        try:
            make_plan(facts, options_for(approach), line_length)
        except NeuralCoderError as refusal:
            survey.verdicts.append(Verdict(approach, refusal))
        else:
            survey.verdicts.append(Verdict(approach))
    return survey


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise Cancelled


def _anchor(facts: Facts, text: str) -> tuple[Span | None, str]:
    src = facts.source
    node: cst.CSTNode | None = None
    kind = ""
    if facts.loop is not None:
        node, kind = facts.loop.entry_loop, "training loop"
    elif facts.trainers:
        node, kind = facts.trainers[0].call, "Hugging Face Trainer"
    elif evaluations := find_evaluations(facts.index):
        node, kind = evaluations[0].call, "evaluation"
    if node is None:
        return None, ""
    start = src.positions[node].start  # type: ignore[attr-defined]
    line_text = text.splitlines()[start.line - 1]
    return Span(start.line, start.column, start.line, len(line_text.rstrip())), kind
