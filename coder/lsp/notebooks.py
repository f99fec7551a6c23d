"""Notebooks in the language server (LSP 3.17 notebook document sync, as VS Code sends it).

pygls keeps each notebook and its cells' text documents in the workspace. Here the code
cells are joined into one program by the notebook engine (`neural_coder.notebooks`, as for
`.ipynb` files and the JupyterLab extension), surveyed like a script, and the answers are
mapped back: each diagnostic to its cell's URI and line, each code action's edit to one
`TextDocumentEdit` per changed cell.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from neural_coder.errors import NeuralCoderError, ParseError
from neural_coder.notebooks.cells import CellProgram
from neural_coder.notebooks.engine import CellsResult, migrate_cells, optimize_cells
from neural_coder.survey import Survey, survey_source

from . import convert

if TYPE_CHECKING:
    from .server import NeuralCoderServer

#: what the server asks the client to sync: Jupyter notebooks, their Python cells
SYNC = types.NotebookDocumentSyncOptions(
    notebook_selector=[
        types.NotebookDocumentFilterWithCells(
            notebook="jupyter-notebook", cells=[types.NotebookCellLanguage(language="python")]
        )
    ]
)


@dataclass
class NotebookSnapshot:
    """The notebook's code cells at one moment: (number, source), their URIs and versions."""

    uri: str
    cells: list[tuple[int, str]]
    cell_uris: dict[int, str]
    versions: dict[str, int | None]

    @property
    def path(self) -> Path:
        return Path(to_fs_path(self.uri) or self.uri)


def snapshot(ls: NeuralCoderServer, notebook_uri: str) -> NotebookSnapshot | None:
    notebook = ls.workspace.get_notebook_document(notebook_uri=notebook_uri)
    if notebook is None:
        return None
    cells: list[tuple[int, str]] = []
    uris: dict[int, str] = {}
    versions: dict[str, int | None] = {}
    for number, cell in enumerate(notebook.cells, 1):
        if cell.kind != types.NotebookCellKind.Code:
            continue
        document = ls.workspace.get_text_document(cell.document)
        if document.language_id not in (None, "python"):
            continue
        cells.append((number, document.source))
        uris[number] = cell.document
        versions[cell.document] = document.version
    return NotebookSnapshot(notebook_uri, cells, uris, versions)


def notebook_of(ls: NeuralCoderServer, cell_uri: str) -> str | None:
    notebook = ls.workspace.get_notebook_document(cell_uri=cell_uri)
    return notebook.uri if notebook is not None else None


def survey_cells(
    ls: NeuralCoderServer, shot: NotebookSnapshot
) -> tuple[CellProgram | None, Survey | None, NeuralCoderError | None]:
    """Runs on the worker thread."""
    config = ls.config()
    try:
        program = CellProgram.from_sources(shot.cells)
    except NeuralCoderError as error:
        return None, None, error
    try:
        found = survey_source(
            shot.path, program.text, lambda approach: convert.options_for(config, approach)
        )
    except NeuralCoderError as error:
        return program, None, program.located(error)
    return program, found, None


def _cell_diagnostics(
    program: CellProgram, found: list[types.Diagnostic], shot: NotebookSnapshot
) -> dict[str, list[types.Diagnostic]]:
    """Program-line diagnostics -> {cell URI: diagnostics at the cell's lines}."""
    by_cell: dict[str, list[types.Diagnostic]] = {uri: [] for uri in shot.cell_uris.values()}
    for diagnostic in found:
        cell, line = program.locate(diagnostic.range.start.line + 1)
        end_cell, end_line = program.locate(diagnostic.range.end.line + 1)
        if end_cell != cell:  # a span over a cell boundary stops at its first cell's line
            end_line, end = line, types.Position(line=line - 1, character=10_000)
        else:
            end = types.Position(line=end_line - 1, character=diagnostic.range.end.character)
        diagnostic.range = types.Range(
            start=types.Position(line=line - 1, character=diagnostic.range.start.character),
            end=end,
        )
        by_cell.setdefault(shot.cell_uris[cell], []).append(diagnostic)
    return by_cell


async def publish(ls: NeuralCoderServer, notebook_uri: str, delay: float) -> None:
    state = ls.doc(notebook_uri)
    version = state.version
    try:
        if delay:
            await asyncio.sleep(delay)
        shot = snapshot(ls, notebook_uri)
        if shot is None:
            return
        program, found, error = await ls.in_worker(survey_cells, ls, shot)
        if state.version != version:
            return
        by_cell: dict[str, list[types.Diagnostic]] = {u: [] for u in shot.cell_uris.values()}
        if isinstance(error, ParseError) and error.cell in shot.cell_uris:
            uri = shot.cell_uris[error.cell]
            lines = dict(shot.cells)[error.cell].splitlines()
            by_cell[uri] = [convert.parse_error_diagnostic(error, lines)]
        elif program is not None and found is not None:
            lines = program.text.splitlines()
            by_cell = _cell_diagnostics(program, convert.diagnostics(found, lines), shot)
        for uri, diagnostics in by_cell.items():
            ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(
                    uri=uri, version=shot.versions.get(uri), diagnostics=diagnostics
                )
            )
    except asyncio.CancelledError:
        pass
    except Exception as error:
        ls.report(f"analysis of {notebook_uri}", error)


def schedule(ls: NeuralCoderServer, notebook_uri: str, version: int | None, delay: float) -> None:
    state = ls.doc(notebook_uri)
    state.version = version if version is not None else state.version + 1
    if state.pending is not None:
        state.pending.cancel()
    state.pending = asyncio.get_running_loop().create_task(publish(ls, notebook_uri, delay))


async def code_actions(
    ls: NeuralCoderServer, notebook_uri: str, params: types.CodeActionParams
) -> list[types.CodeAction]:
    """The approaches for the whole notebook, offered in any of its cells."""
    shot = snapshot(ls, notebook_uri)
    if shot is None:
        return []
    _, found, error = await ls.in_worker(survey_cells, ls, shot)
    if found is None:
        if error is not None and not isinstance(error, ParseError):
            ls.window_log_message(
                types.LogMessageParams(type=types.MessageType.Info, message=error.render())
            )
        return []
    only = params.context.only
    data = {"uri": notebook_uri, "notebook": True}
    actions = []
    for verdict in found.verdicts:
        if verdict.refusal is not None and not ls.supports_disabled():
            continue
        kind = convert.source_kind(verdict.approach)
        if convert.wanted(only, kind):
            refusal = verdict.refusal
            if refusal is not None and refusal.line is not None and refusal.cell is None:
                program = CellProgram.from_sources(shot.cells)
                refusal = program.located(refusal)
            actions.append(convert.action(verdict.approach, kind, data, refusal))
    from .auto import KIND, POST_TRAINING, auto_action  # auto is built on this module

    if convert.wanted(only, KIND) and any(
        v.approach in POST_TRAINING and v.refusal is None for v in found.verdicts
    ):
        actions.append(auto_action(notebook_uri))
    if found.legacy and convert.wanted(only, f"{convert.KIND_PREFIX}.migrate"):
        actions.append(convert.action(convert.MIGRATE, f"{convert.KIND_PREFIX}.migrate", data))
    if not ls.supports_resolve():
        for item in actions:
            if item.disabled is None and item.command is None:
                await resolve(ls, item)
    return actions


async def resolve(ls: NeuralCoderServer, item: types.CodeAction) -> types.CodeAction:
    data: dict[str, Any] = item.data or {}
    shot = snapshot(ls, data["uri"])
    if shot is None:
        raise NeuralCoderError(f"the notebook {data['uri']} is not open")
    approach = data["approach"]
    if approach == convert.MIGRATE:
        target = str(ls.state.settings.get("migrateTarget") or "inc")
        result = await ls.in_worker(migrate_cells, shot.path, shot.cells, target)
    else:
        options = convert.options_for(ls.config(), approach)
        result = await ls.in_worker(optimize_cells, shot.path, shot.cells, options)
    item.edit = cells_edit(shot, result)
    return item


def cells_edit(shot: NotebookSnapshot, result: CellsResult) -> types.WorkspaceEdit:
    """One TextDocumentEdit per changed cell, each against the cell's synced version."""
    changes: list[Any] = []
    for number, old, new in zip(result.numbers, result.before, result.sources):
        if old != new:
            uri = shot.cell_uris[number]
            changes += (
                convert.workspace_edit(uri, shot.versions[uri], old, new).document_changes or []
            )
    return types.WorkspaceEdit(document_changes=changes)
