"""The language server's "Auto: measure and keep the best" over a real LSP client
(pytest-lsp, VS Code's capabilities): offered as a code action that carries the
command, run with `$/progress`, the winner applied as a WorkspaceEdit equal to what
`neural-coder optimize --approach <winner>` writes, and the table in a message. No
timing is asserted: which candidate wins depends on the machine."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from neural_coder.auto.choose import within_goal
from tests.lsp.helpers import apply_workspace_edit, cli_output, tell_commands_from_actions

SERVER = [str(Path(sys.executable).with_name("neural-coder")), "lsp"]
SAMPLE = Path(__file__).with_name("tiny_eval.py")
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient):
    tell_commands_from_actions(lsp_client)
    lsp_client.applied: list[types.ApplyWorkspaceEditParams] = []  # type: ignore[misc]

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        lsp_client.applied.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


def open_text(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )


async def test_auto_action_runs_auto_and_applies_the_winner(client: LanguageClient, tmp_path):
    script = tmp_path / "tiny_eval.py"
    shutil.copy(SAMPLE, script)
    uri, text = script.as_uri(), script.read_text()
    client.set_configuration(
        {"auto": {"approaches": ["ptq-dynamic"], "timeout": 300}}, section="neuralCoder"
    )
    open_text(client, uri, text)
    answer = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            context=types.CodeActionContext(diagnostics=[], only=["source.neuralCoder.auto"]),
        )
    )  # fmt: skip
    (action,) = [a for a in answer or [] if isinstance(a, types.CodeAction)]
    assert action.title == "Neural Coder: Auto: measure and keep the best"
    assert action.edit is None and action.command is not None

    client.messages.clear()
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    report = result["report"]
    assert [c["name"] for c in report["candidates"]] == ["fp32", "ptq-dynamic"]
    assert all(c["status"] == "measured" for c in report["candidates"]), report
    # the winner is the fastest of those within the goal, by the figures in the report
    qualified = [
        c for c in report["candidates"]
        if c["name"] == "fp32" or within_goal(c["accuracy"], report["fp32_accuracy"],
                                              c["higher_is_better"], "relative", 0.01)
    ]  # fmt: skip
    fastest = max(qualified, key=lambda c: c["throughput"])["name"]
    assert report["winner"] == (None if fastest == "fp32" else fastest)
    # the table reaches the person as a message
    assert any("fp32: accuracy " in m.message for m in client.messages)
    assert "fp32: accuracy" in result["message"] and "ptq-dynamic" in result["message"]
    reports = [p for reports in client.progress_reports.values() for p in reports]
    assert any(isinstance(p, types.WorkDoneProgressReport) and "ptq-dynamic" in (p.message or "")
               for p in reports)  # fmt: skip
    if report["winner"] is None:
        assert result["applied"] is False and not client.applied  # type: ignore[attr-defined]
    else:
        assert result["applied"] is True
        (params,) = client.applied  # type: ignore[attr-defined]
        expected = cli_output("optimize", script, tmp_path / "out.py", "-a", report["winner"])
        assert apply_workspace_edit(params.edit, uri, text) == expected
    assert script.read_text() == text  # the server edits the buffer, never the file
    client.set_configuration({}, section="neuralCoder")


async def test_bad_auto_settings_are_a_message_not_a_crash(client: LanguageClient):
    uri, text = SAMPLE.as_uri(), SAMPLE.read_text()
    open_text(client, uri, text)
    client.set_configuration({"auto": {"approaches": "turbo"}}, section="neuralCoder")
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="neuralCoder.auto", arguments=[uri])
    )
    assert (
        result["applied"] is False and "neuralCoder.auto: --approaches: turbo" in result["message"]
    )
    client.set_configuration({}, section="neuralCoder")
