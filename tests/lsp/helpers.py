"""What an editor does with the server's answers, and what the CLI writes, for comparing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from click.testing import CliRunner
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from neural_coder.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def offset(text: str, position: types.Position) -> int:
    """The string index of an LSP position (UTF-16 columns)."""
    lines = text.splitlines(keepends=True)
    if position.line >= len(lines):
        return len(text)
    start = sum(len(line) for line in lines[: position.line])
    line, units, index = lines[position.line], 0, 0
    while index < len(line) and units < position.character:
        units += len(line[index].encode("utf-16-le")) // 2
        index += 1
    return start + index


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """As the LSP says: every range refers to the original text; apply from the end."""
    spans = sorted(
        ((offset(text, e.range.start), offset(text, e.range.end), e.new_text) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def apply_workspace_edit(edit: types.WorkspaceEdit, uri: str, text: str) -> str:
    edits: list[types.TextEdit] = []
    for change in edit.document_changes or []:
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.uri == uri
        edits += change.edits  # type: ignore[arg-type]
    edits += (edit.changes or {}).get(uri, [])
    assert edits, "the action carries no edit"
    return apply_edits(text, edits)


def cli_output(command: str, script: Path, out: Path, *args: str) -> str:
    """What `neural-coder COMMAND SCRIPT -o OUT ARGS` writes (run in-process)."""
    result = CliRunner().invoke(main, [command, str(script), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.read_text()


def tell_commands_from_actions(client: LanguageClient) -> None:
    """A Command's `command` is a string, a CodeAction's an object (VS Code tells them apart
    so); lsprotocol's own hook takes any object with a `command` key for a Command, which
    would turn the Auto code action into a broken Command on this client."""
    converter = client.protocol._converter

    def structure(value: Any, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(value.get("command"), str) else types.CodeAction
        return converter.structure(value, kind)

    # the key lsprotocol registers its hook under (typing.Union, not a `|` union)
    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007
