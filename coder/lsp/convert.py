"""From the engine's answers (a survey, a rewritten text) to LSP values: diagnostics,
code actions, text edits; and from an editor's settings to the engine's options.

Nothing here looks at code: positions come from the engine, text edits are a line diff
of the engine's output against the buffer it was given.
"""

from __future__ import annotations

import difflib
from typing import Any

from lsprotocol import types

from neural_coder.errors import NeuralCoderError
from neural_coder.options import OptimizeOptions, build_options, check_config
from neural_coder.survey import Span, Survey

SOURCE = "neural-coder"
MAX_DIAGNOSTICS = 50  # a file full of 1.x calls still gets a readable Problems list
KIND_PREFIX = "source.neuralCoder"
MIGRATE = "migrate"

TITLES = {
    "qat": "QAT (quantization-aware training)",
    "pruning": "pruning",
    "distillation": "distillation",
    "pruning+qat": "pruning + QAT (one shot)",
    "distillation+qat": "distillation + QAT (one shot)",
    "distillation+pruning": "distillation + pruning (one shot)",
    "distillation+pruning+qat": "distillation + pruning + QAT (one shot)",
    "ptq-static": "post-training static quantization",
    "ptq-dynamic": "post-training dynamic quantization",
    "bf16": "bf16 mixed precision",
    MIGRATE: "Migrate to INC 2.x",
}


def title(approach: str) -> str:
    return TITLES[approach] if approach == MIGRATE else f"Neural Coder: {TITLES[approach]}"


# -- positions ------------------------------------------------------------------------------
def utf16_column(line_text: str, column: int) -> int:
    """LSP counts columns in UTF-16 code units; libcst in code points."""
    return len(line_text[:column].encode("utf-16-le")) // 2


def to_range(span: Span, lines: list[str]) -> types.Range:
    def position(line: int, column: int) -> types.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return types.Position(line=line - 1, character=utf16_column(text, column))

    return types.Range(
        start=position(span.line, span.column), end=position(span.end_line, span.end_column)
    )


def error_range(error: NeuralCoderError, lines: list[str]) -> types.Range:
    """The error's line (columns from 1 in our errors), to the end of that line."""
    line = min(max(error.line or 1, 1), max(len(lines), 1))
    text = lines[line - 1] if lines else ""
    column = max((error.column or 1) - 1, 0)
    column = min(column, len(text))
    if column == len(text):
        column = len(text) - len(text.lstrip())
    return to_range(Span(line, column, line, len(text.rstrip())), lines)


# -- diagnostics ----------------------------------------------------------------------------
def diagnostics(survey: Survey, lines: list[str]) -> list[types.Diagnostic]:
    found: list[types.Diagnostic] = []
    if survey.anchor is not None and survey.possible:
        found.append(
            types.Diagnostic(
                range=to_range(survey.anchor, lines),
                severity=types.DiagnosticSeverity.Hint,
                source=SOURCE,
                code="approaches",
                message=f"{survey.anchor_kind}: neural-coder can insert "
                + ", ".join(survey.possible),
            )
        )
    for span, what in survey.legacy:
        found.append(
            types.Diagnostic(
                range=to_range(span, lines),
                severity=types.DiagnosticSeverity.Warning,
                source=SOURCE,
                code="inc-1x",
                message=f"Intel Neural Compressor 1.x API ({what}); "
                "the 'Migrate to INC 2.x' quick fix rewrites it to the 2.x API",
            )
        )
    return found[:MAX_DIAGNOSTICS]


def parse_error_diagnostic(error: NeuralCoderError, lines: list[str]) -> types.Diagnostic:
    return types.Diagnostic(
        range=error_range(error, lines),
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        code="parse",
        message=f"{error.message} (neural-coder cannot analyse this file until it parses)",
    )


# -- code actions ---------------------------------------------------------------------------
def action(
    approach: str,
    kind: str,
    data: dict[str, Any],
    refusal: NeuralCoderError | None = None,
    diagnostics: list[types.Diagnostic] | None = None,
) -> types.CodeAction:
    disabled = None
    if refusal is not None:
        reason = refusal.message + (f" (hint: {refusal.hint})" if refusal.hint else "")
        where = f"line {refusal.line}: " if refusal.line else ""
        if refusal.cell is not None:  # a notebook's
            where = f"cell {refusal.cell} " + (where or ": ")
        disabled = types.CodeActionDisabled(reason=where + reason)
    return types.CodeAction(
        title=title(approach),
        kind=kind,
        diagnostics=diagnostics or None,
        disabled=disabled,
        data={**data, "approach": approach},
    )


def wanted(only: list[str] | None, kind: str) -> bool:
    """LSP's `only` filter: a kind matches itself and its parents (`source` takes `source.x`)."""
    return only is None or any(kind == o or kind.startswith(o + ".") for o in only)


def source_kind(approach: str) -> str:
    return f"{KIND_PREFIX}.{approach.replace('+', '_').replace('-', '_')}"


def overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


# -- edits ------------------------------------------------------------------------------------
def text_edits(old: str, new: str) -> list[types.TextEdit]:
    """Line-level edits turning `old` into `new` (whole lines, so no column arithmetic)."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        edits.append(
            types.TextEdit(
                range=types.Range(start=_line_start(a, i1), end=_line_start(a, i2)),
                new_text="".join(b[j1:j2]),
            )
        )
    return edits


def _line_start(lines: list[str], index: int) -> types.Position:
    if index == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        # past the last line, which has no newline: its end
        return types.Position(
            line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2
        )
    return types.Position(line=index, character=0)


def workspace_edit(uri: str, version: int | None, old: str, new: str) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version
                ),
                edits=text_edits(old, new),  # type: ignore[arg-type]
            )
        ]
    )


# -- settings ---------------------------------------------------------------------------------
SETTING_KEYS = {  # editor setting (camelCase, VS Code style) -> config key
    "targetSparsity": "target_sparsity",
    "pruningType": "pruning_type",
    "pruningScope": "pruning_scope",
    "startStep": "start_step",
    "endStep": "end_step",
    "lossTypes": "loss_types",
    "lossWeights": "loss_weights",
}
FRONT_END_ONLY = (
    "interpreter",
    "trace",
    "debounceMs",
    "migrateTarget",
    "auto",
)  # auto: lsp/auto.py


def settings_to_config(settings: object) -> dict[str, Any]:
    """`neuralCoder` settings -> the mapping a --config yaml holds (unset values dropped)."""
    if not isinstance(settings, dict):
        return {}
    config: dict[str, Any] = {}
    for key, value in settings.items():
        if key in FRONT_END_ONLY or value in (None, ""):
            continue
        if isinstance(value, dict):
            section = {
                SETTING_KEYS.get(k, k): v for k, v in value.items() if v not in (None, "", [])
            }
            if section:
                config[key] = section
        else:
            config[key] = value
    return check_config(config)


def options_for(config: dict[str, Any], approach: str) -> OptimizeOptions:
    return build_options(approach, None, {k: v for k, v in config.items() if k != "approach"}, {})
