"""Notebooks over LSP 3.17 notebook document sync, with a real client (pytest-lsp) that
advertises it as VS Code does: diagnostics land on the cells, each code action's edit
changes the cells exactly as `neural-coder optimize` changes the .ipynb, a didChange of
a cell is used, refusals are disabled actions naming the cell, close clears."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import run_cli
from tests.lsp.helpers import SAMPLES, apply_edits, tell_commands_from_actions

nbformat = pytest.importorskip("nbformat", reason="the jupyter extra is not installed")
SERVER = [str(Path(sys.executable).with_name("neural-coder")), "lsp"]
NOTEBOOK = SAMPLES / "notebooks" / "train_classifier.ipynb"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient):
    capabilities = client_capabilities("visual-studio-code")
    capabilities.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities(
            dynamic_registration=True, execution_summary_support=True
        )
    )
    tell_commands_from_actions(lsp_client)
    lsp_client.applied: list[types.ApplyWorkspaceEditParams] = []  # type: ignore[misc]

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        lsp_client.applied.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    answer = await lsp_client.initialize_session(types.InitializeParams(capabilities=capabilities))
    sync = answer.capabilities.notebook_document_sync
    assert sync is not None and sync.notebook_selector[0].notebook == "jupyter-notebook"
    yield
    await lsp_client.shutdown_session()


class OpenNotebook:
    """A notebook as VS Code syncs it: one text document per cell."""

    def __init__(self, client: LanguageClient, path: Path) -> None:
        self.client, self.uri = client, path.as_uri()
        notebook = nbformat.read(path, as_version=4)
        self.kinds = [c.cell_type for c in notebook.cells]
        self.texts = [c.source for c in notebook.cells]
        self.cell_uris = [f"vscode-notebook-cell:{path}#cell{n}" for n in range(1, len(self.texts) + 1)]  # fmt: skip
        self.versions = [1] * len(self.texts)
        self.version = 1
        for uri in self.cell_uris:
            client.diagnostics.pop(uri, None)
        client.notebook_document_did_open(
            types.DidOpenNotebookDocumentParams(
                notebook_document=types.NotebookDocument(
                    uri=self.uri, notebook_type="jupyter-notebook", version=1,
                    cells=[types.NotebookCell(kind=self._kind(i), document=u) for i, u in enumerate(self.cell_uris)],
                ),
                cell_text_documents=[
                    types.TextDocumentItem(
                        uri=u, version=1, text=t,
                        language_id="python" if k == "code" else "markdown",
                    )
                    for u, t, k in zip(self.cell_uris, self.texts, self.kinds)
                ],
            )
        )  # fmt: skip

    def _kind(self, index: int) -> types.NotebookCellKind:
        code = self.kinds[index] == "code"
        return types.NotebookCellKind.Code if code else types.NotebookCellKind.Markup

    def change_cell(self, number: int, text: str) -> None:
        index = number - 1
        self.texts[index], self.versions[index] = text, self.versions[index] + 1
        self.version += 1
        for uri in self.cell_uris:
            self.client.diagnostics.pop(uri, None)
        self.client.notebook_document_did_change(
            types.DidChangeNotebookDocumentParams(
                notebook_document=types.VersionedNotebookDocumentIdentifier(uri=self.uri, version=self.version),
                change=types.NotebookDocumentChangeEvent(
                    cells=types.NotebookDocumentCellChanges(
                        text_content=[
                            types.NotebookDocumentCellContentChanges(
                                document=types.VersionedTextDocumentIdentifier(
                                    uri=self.cell_uris[index], version=self.versions[index]
                                ),
                                changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
                            )
                        ]
                    )
                ),
            )
        )  # fmt: skip

    def close(self) -> None:
        self.client.notebook_document_did_close(
            types.DidCloseNotebookDocumentParams(
                notebook_document=types.NotebookDocumentIdentifier(uri=self.uri),
                cell_text_documents=[types.TextDocumentIdentifier(uri=u) for u in self.cell_uris],
            )
        )

    async def diagnostics(self) -> dict[int, list[types.Diagnostic]]:
        """Per cell number, once every code cell got its diagnostics."""
        code = [u for u, k in zip(self.cell_uris, self.kinds) if k == "code"]
        for _ in range(600):
            if all(u in self.client.diagnostics for u in code):
                return {
                    n: list(self.client.diagnostics.get(u, []))
                    for n, u in enumerate(self.cell_uris, 1)
                }
            await asyncio.sleep(0.05)
        raise AssertionError("no diagnostics for the notebook's cells")

    async def actions(self, cell: int) -> list[types.CodeAction]:
        answer = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=self.cell_uris[cell - 1]),
                range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )  # fmt: skip
        return [a for a in answer or [] if isinstance(a, types.CodeAction)]

    async def applied(self, item: types.CodeAction) -> list[str]:
        """The cells' texts after the action's edit."""
        assert item.disabled is None, item.disabled
        if item.edit is None:
            item = await self.client.code_action_resolve_async(item)
        return self.with_edit(item.edit)

    def with_edit(self, edit: types.WorkspaceEdit) -> list[str]:
        texts = list(self.texts)
        for change in edit.document_changes or []:
            index = self.cell_uris.index(change.text_document.uri)
            assert change.text_document.version == self.versions[index]
            texts[index] = apply_edits(texts[index], change.edits)
        return texts


def cli_cells(tmp_path: Path, notebook: Path, *args: str) -> list[str]:
    copy = tmp_path / "cli.ipynb"
    shutil.copy(notebook, copy)
    result = run_cli("optimize", copy, *args)
    assert result.exit_code == 0, result.output
    return [c.source for c in nbformat.read(copy, as_version=4).cells]


def by_approach(actions: list[types.CodeAction]) -> dict[str, types.CodeAction]:
    return {a.data["approach"]: a for a in actions if a.data}  # type: ignore[index]


async def test_diagnostics_sit_on_the_training_loop_cell(client: LanguageClient):
    notebook = OpenNotebook(client, NOTEBOOK)
    found = await notebook.diagnostics()
    (hint,) = found[6]
    assert hint.code == "approaches" and "qat" in hint.message
    assert hint.range.start.line == 1  # `for epoch ...` below `%%time` in cell 6
    assert all(not found[n] for n in found if n != 6)
    notebook.close()


async def test_each_action_changes_the_cells_as_the_cli_changes_the_notebook(
    client: LanguageClient, tmp_path
):
    notebook = OpenNotebook(client, NOTEBOOK)
    actions = by_approach(await notebook.actions(cell=6))
    for approach in ("qat", "pruning", "ptq-dynamic"):
        assert await notebook.applied(actions[approach]) == cli_cells(
            tmp_path, NOTEBOOK, "-a", approach
        ), approach
    # a refusal is a disabled action that names the cell
    distillation = actions["distillation"]
    assert distillation.disabled is not None
    assert distillation.disabled.reason.startswith("cell 6 line ")
    assert "cell 4 line 1" in distillation.disabled.reason  # where the model is built
    notebook.close()


async def test_an_edited_cell_is_used_and_close_clears(client: LanguageClient, tmp_path):
    notebook = OpenNotebook(client, NOTEBOOK)
    await notebook.diagnostics()
    edited = notebook.texts[5].replace("range(3)", "range(5)")
    notebook.change_cell(6, edited)
    found = await notebook.diagnostics()
    assert [d.code for d in found[6]] == ["approaches"]
    after = await notebook.applied(by_approach(await notebook.actions(cell=2))["pruning"])
    assert "for epoch in range(5):" in after[5] and "prepare_compression(" in after[5]
    changed = tmp_path / "edited.ipynb"
    saved = nbformat.read(NOTEBOOK, as_version=4)
    saved.cells[5].source = edited
    nbformat.write(saved, changed)
    assert after == cli_cells(tmp_path, changed, "-a", "pruning")
    # a cell that does not parse: a diagnostic on that cell, and the server goes on
    notebook.change_cell(3, "x = (1,\n")
    found = await notebook.diagnostics()
    assert [d.code for d in found[3]] == ["parse"] and found[3][0].range.start.line == 0
    notebook.close()
    for _ in range(100):
        if all(not client.diagnostics.get(u) for u in notebook.cell_uris):
            break
        await asyncio.sleep(0.05)
    assert all(not client.diagnostics.get(u) for u in notebook.cell_uris)


@pytest.mark.e2e
async def test_auto_on_a_notebook_runs_its_cells_and_edits_the_winners(
    client: LanguageClient, tmp_path
):
    from tests.notebooks.test_notebook_auto import tiny_notebook

    path = tiny_notebook(tmp_path / "tiny.ipynb")
    client.set_configuration({"auto": {"approaches": ["ptq-dynamic"]}}, section="neuralCoder")
    notebook = OpenNotebook(client, path)
    (auto,) = [a for a in await notebook.actions(cell=3) if a.kind == "source.neuralCoder.auto"]
    assert auto.command is not None and list(auto.command.arguments or []) == [notebook.uri]
    client.applied.clear()  # type: ignore[attr-defined]
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=auto.command.command, arguments=[notebook.cell_uris[2]])
    )
    report = result["report"]
    assert [c["status"] for c in report["candidates"]] == ["measured", "measured"], result
    if report["winner"] is None:
        assert result["applied"] is False and not client.applied  # type: ignore[attr-defined]
    else:
        (params,) = client.applied  # type: ignore[attr-defined]
        assert notebook.with_edit(params.edit) == cli_cells(tmp_path, path, "-a", report["winner"])
    client.set_configuration({}, section="neuralCoder")
    notebook.close()
