"""`neural-coder lsp` end to end: a real LSP client (pytest-lsp) over stdio, initialised with
VS Code's client capabilities, against the server process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp.helpers import SAMPLES, apply_workspace_edit, cli_output

SERVER = [str(Path(sys.executable).with_name("neural-coder")), "lsp"]  # the console script
ENV = {**os.environ, "NEURAL_CODER_LSP_PROGRESS_AFTER_S": "0"}  # progress even for quick work
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env=ENV), scope="module"
)
async def client(lsp_client: LanguageClient):
    lsp_client.applied: list[types.ApplyWorkspaceEditParams] = []  # type: ignore[misc]
    lsp_client.published: list[tuple[str, int | None]] = []  # type: ignore[misc]
    features = lsp_client.protocol.fm.features
    keep = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def record(params: types.PublishDiagnosticsParams) -> None:  # and keep pytest-lsp's own
        lsp_client.published.append((params.uri, params.version))  # type: ignore[attr-defined]
        keep(params)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = record

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        lsp_client.applied.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()
    assert lsp_client._server is not None and lsp_client._server.returncode == 0


# -- what an editor does -------------------------------------------------------------------
def open_text(client: LanguageClient, uri: str, text: str) -> None:
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )


def change_text(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.diagnostics.pop(uri, None)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    for _ in range(600):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no diagnostics published for {uri}")


async def actions(
    client: LanguageClient,
    uri: str,
    only: list[str] | None = None,
    near: list[types.Diagnostic] | None = None,
    line: int = 0,
) -> list[types.CodeAction]:
    answer = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=line, character=0),
                end=types.Position(line=line, character=0),
            ),
            context=types.CodeActionContext(diagnostics=near or [], only=only),
        )
    )
    return [a for a in answer or [] if isinstance(a, types.CodeAction)]


async def resolved_text(client: LanguageClient, item: types.CodeAction, uri: str, text: str) -> str:
    assert item.disabled is None, item.disabled
    if item.edit is None:
        item = await client.code_action_resolve_async(item)
    assert item.edit is not None
    return apply_workspace_edit(item.edit, uri, text)


def approach_of(item: types.CodeAction) -> str:
    return item.data["approach"]  # type: ignore[index]


# -- the checks ----------------------------------------------------------------------------
async def test_diagnostics_sit_on_the_training_loop_and_each_1x_use(client: LanguageClient):
    script = SAMPLES / "step_budget_loop.py"
    uri = script.as_uri()
    open_text(client, uri, script.read_text())
    found = await diagnostics(client, uri)
    assert [(d.range.start.line, d.severity) for d in found] == [
        (33, types.DiagnosticSeverity.Hint)
    ]  # `while step < max_steps:` is line 34
    assert found[0].message.startswith("training loop: neural-coder can insert qat, pruning")
    close(client, uri)

    legacy = SAMPLES / "legacy" / "qat_main.py"
    open_text(client, legacy.as_uri(), legacy.read_text())
    found = await diagnostics(client, legacy.as_uri())
    warnings = [d for d in found if d.severity == types.DiagnosticSeverity.Warning]
    assert [d.range.start.line + 1 for d in warnings] == [6, 49, 50]
    assert all("Migrate to INC 2.x" in d.message for d in warnings)
    close(client, legacy.as_uri())


async def test_nothing_to_say_gives_no_diagnostics_and_no_actions(client: LanguageClient, tmp_path):
    uri = (tmp_path / "util.py").as_uri()
    open_text(client, uri, "import os\n\n\ndef home():\n    return os.environ['HOME']\n")
    assert await diagnostics(client, uri) == []
    assert await actions(client, uri) == []


@pytest.mark.parametrize(
    "sample", ["step_budget_loop.py", "ptq_cnn_eval.py"], ids=lambda name: name.split(".")[0]
)
async def test_each_action_gives_the_cli_output_then_none_is_offered(
    client: LanguageClient, tmp_path: Path, sample: str
):
    script = SAMPLES / sample
    uri, text = script.as_uri(), script.read_text()
    open_text(client, uri, text)
    offered = await actions(client, uri, only=[types.CodeActionKind.Source])
    enabled = [a for a in offered if a.disabled is None]
    assert all(a.kind.startswith("source.neuralCoder.") for a in offered)
    if sample == "ptq_cnn_eval.py":  # an inference script: no training loop
        assert [approach_of(a) for a in enabled] == ["ptq-static", "ptq-dynamic", "bf16"]
        assert all("training loop" in a.disabled.reason for a in offered if a.disabled)
    else:  # a model built at random: distillation needs a teacher given with --teacher
        distilled = [a for a in offered if "distillation" in approach_of(a)]
        assert distilled and all(
            a.disabled and "needs a teacher" in a.disabled.reason for a in distilled
        )
        assert len(enabled) + len(distilled) == 10
    for item in enabled:
        new = await resolved_text(client, item, uri, text)
        expected = cli_output("optimize", script, tmp_path / "out.py", "-a", approach_of(item))
        assert new == expected, approach_of(item)
    change_text(client, uri, 2, new)  # the last one, applied in the editor
    assert await diagnostics(client, uri) == []
    assert await actions(client, uri) == []
    close(client, uri)


async def test_an_action_after_did_change_uses_the_unsaved_text(client: LanguageClient, tmp_path):
    saved = (SAMPLES / "step_budget_loop.py").read_text()
    script = tmp_path / "train.py"
    script.write_text(saved)
    edited = saved.replace(
        "MAX_STEPS = 40", "MAX_STEPS = 400", 1
    )  # pruning fits its schedule to it
    assert edited != saved
    uri = script.as_uri()
    open_text(client, uri, saved)
    await diagnostics(client, uri)
    change_text(client, uri, 2, edited)  # typed, not saved
    pruning = next(a for a in await actions(client, uri) if a.kind == "source.neuralCoder.pruning")
    new = await resolved_text(client, pruning, uri, edited)
    (tmp_path / "edited.py").write_text(edited)
    assert new == cli_output(
        "optimize", tmp_path / "edited.py", tmp_path / "out.py", "-a", "pruning"
    )
    assert new != cli_output("optimize", script, tmp_path / "out.py", "-a", "pruning")
    assert script.read_text() == saved  # the server never writes files
    close(client, uri)


async def test_migrate_quick_fix_on_an_inc_1x_script(client: LanguageClient, tmp_path):
    script = SAMPLES / "legacy" / "qat_main.py"
    uri, text = script.as_uri(), script.read_text()
    open_text(client, uri, text)
    warning = next(d for d in await diagnostics(client, uri) if d.code == "inc-1x")
    fixes = await actions(
        client,
        uri,
        only=[types.CodeActionKind.QuickFix],
        near=[warning],
        line=warning.range.start.line,
    )
    assert [a.title for a in fixes] == ["Migrate to INC 2.x"]
    assert list(fixes[0].diagnostics or []) == [warning]
    new = await resolved_text(client, fixes[0], uri, text)
    assert new == cli_output("migrate", script, tmp_path / "out.py")
    change_text(client, uri, 2, new)
    assert not any(d.code == "inc-1x" for d in await diagnostics(client, uri))
    assert not any(approach_of(a) == "migrate" for a in await actions(client, uri))
    close(client, uri)


async def test_a_refusal_is_a_disabled_action_with_its_reason(client: LanguageClient):
    script = SAMPLES / "peft_lora_finetune.py"
    uri = script.as_uri()
    open_text(client, uri, script.read_text())
    offered = {approach_of(a): a for a in await actions(client, uri, only=["source"])}
    # not refused for its adapters: its model is built at random, so it needs --teacher
    assert "needs a teacher" in offered["distillation"].disabled.reason
    reason = offered["pruning"].disabled.reason
    assert "LoRA" in reason or "peft" in reason.lower(), reason
    assert offered["qat"].disabled is not None
    close(client, uri)


async def test_a_file_that_does_not_parse_gets_a_diagnostic_and_the_server_goes_on(
    client: LanguageClient, tmp_path
):
    uri = (tmp_path / "broken.py").as_uri()
    open_text(client, uri, "import torch\n\ndef train(model:\n    pass\n")
    (error,) = await diagnostics(client, uri)
    assert error.severity == types.DiagnosticSeverity.Error and error.code == "parse"
    assert error.range.start.line in (2, 3)
    assert await actions(client, uri) == []
    change_text(client, uri, 2, "import torch\n")
    assert await diagnostics(client, uri) == []
    close(client, uri)


async def test_command_takes_options_from_the_client_settings(client: LanguageClient, tmp_path):
    script = SAMPLES / "step_budget_loop.py"
    uri, text = script.as_uri(), script.read_text()
    client.set_configuration(
        {"target": "inc", "pruning": {"targetSparsity": 0.7, "pattern": "1x1"}},
        section="neuralCoder",
    )
    open_text(client, uri, text)
    client.applied.clear()  # type: ignore[attr-defined]
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="neuralCoder.optimize", arguments=[uri, "pruning"])
    )
    assert answer["applied"] is True, answer
    (params,) = client.applied  # type: ignore[attr-defined]
    expected = cli_output(
        "optimize", script, tmp_path / "out.py", "-a", "pruning", "--target", "inc",
        "--target-sparsity", "0.7", "--pattern", "1x1",
    )  # fmt: skip
    assert apply_workspace_edit(params.edit, uri, text) == expected
    kinds = [type(p) for reports in client.progress_reports.values() for p in reports]
    assert types.WorkDoneProgressBegin in kinds and types.WorkDoneProgressEnd in kinds
    bad = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="neuralCoder.optimize", arguments=[uri, "turbo"])
    )
    assert bad["applied"] is False and "unknown approach" in bad["message"]
    client.set_configuration({}, section="neuralCoder")
    close(client, uri)


async def test_an_error_inside_the_server_is_logged_and_reported_not_fatal(client: LanguageClient):
    client.messages.clear()
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="neuralCoder.optimize", arguments=[])
    )  # no document: an IndexError inside the handler
    assert answer["applied"] is False
    assert any("failed" in m.message for m in client.messages)
    assert any("Traceback" in m.message for m in client.log_messages)
    script = SAMPLES / "hf_inference.py"
    open_text(client, script.as_uri(), script.read_text())
    assert [d.code for d in await diagnostics(client, script.as_uri())] == ["approaches"]
    close(client, script.as_uri())


HELPER = """

def summarize_{n}(rows, labels):
    counts = {{}}
    for row, label in zip(rows, labels):
        counts[int(label)] = counts.get(int(label), 0) + float(row.abs().mean())
    return counts
"""


async def test_edits_in_quick_succession_publish_once_and_the_server_keeps_answering(
    client: LanguageClient, tmp_path
):
    base = (SAMPLES / "step_budget_loop.py").read_text()
    big = base + "".join(HELPER.format(n=n) for n in range(120))  # ~1,000 lines
    uri = (tmp_path / "big.py").as_uri()
    client.published.clear()  # type: ignore[attr-defined]
    open_text(client, uri, big)
    for version in (2, 3, 4):  # typing: each change supersedes the analysis of the one before
        change_text(client, uri, version, big.replace("MAX_STEPS = 40", f"MAX_STEPS = 4{version}"))
    # the analysis runs off the event loop: a request is answered while it is under way
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="neuralCoder.optimize", arguments=[uri, "turbo"])
    )
    assert "unknown approach" in answer["message"]
    assert uri not in client.diagnostics
    found = await diagnostics(client, uri)
    assert [d.code for d in found] == ["approaches"]
    assert [v for u, v in client.published if u == uri] == [4]  # type: ignore[attr-defined]
    close(client, uri)
