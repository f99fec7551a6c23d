"""`neural-coder lsp`: the language server (pygls 2.x over stdio).

Diagnostics come from `survey_source` on the unsaved buffer, debounced and run on one
worker thread (libcst holds the GIL; one worker keeps the event loop answering); a newer
version of the buffer cancels the survey of an older one between its steps. Code actions
carry the approach; their edit is `rewrite_source` / `migrate_text` on the buffer as it
is when the action is resolved. Any failure inside a handler is logged and reported to
the client; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from neural_coder import __version__
from neural_coder.api import migrate_text, rewrite_source
from neural_coder.errors import NeuralCoderError, ParseError
from neural_coder.survey import APPROACHES, Cancelled, Survey, survey_source

from . import auto as lsp_auto
from . import convert
from . import notebooks as lsp_notebooks

log = logging.getLogger("neural_coder.lsp")
T = TypeVar("T")

DEBOUNCE_S = 0.3
# commands that take longer report `$/progress` (the variable lets tests see it on fast work)
PROGRESS_AFTER_S = float(os.environ.get("NEURAL_CODER_LSP_PROGRESS_AFTER_S", "1.0"))
QUICKFIX = types.CodeActionKind.QuickFix
KINDS = [QUICKFIX, types.CodeActionKind.Source, convert.KIND_PREFIX, lsp_auto.KIND]


@dataclass
class DocumentState:
    version: int = 0
    pending: asyncio.Task | None = None
    survey: tuple[int, str, Survey | None] | None = None  # (version, text, survey)
    migrated: tuple[str, str] | None = None  # (text, its migration) last computed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one survey at a time, then cached


@dataclass
class ServerState:
    documents: dict[str, DocumentState] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # the client's `neuralCoder` section

    @property
    def debounce_s(self) -> float:
        value = self.settings.get("debounceMs")
        return value / 1000 if isinstance(value, int | float) and value >= 0 else DEBOUNCE_S


class NeuralCoderServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("neural-coder", __version__, notebook_document_sync=lsp_notebooks.SYNC)
        self.state = ServerState()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neural-coder")

    async def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self.worker, functools.partial(fn, *args)
        )

    def doc(self, uri: str) -> DocumentState:
        return self.state.documents.setdefault(uri, DocumentState())

    def report(self, what: str, error: BaseException) -> None:
        """An unexpected failure: logged with its traceback, shown once, never fatal."""
        detail = "".join(traceback.format_exception(error))
        log.error("%s failed: %s", what, detail)
        self.window_log_message(
            types.LogMessageParams(type=types.MessageType.Error, message=f"{what}: {detail}")
        )
        self.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Error,
                message=f"neural-coder: {what} failed ({error}); see the output for details",
            )
        )

    # -- settings ---------------------------------------------------------------------------
    async def fetch_settings(self, uri: str | None = None) -> dict[str, Any]:
        workspace = self.client_capabilities.workspace
        if workspace is not None and workspace.configuration:
            try:
                answer = await self.workspace_configuration_async(
                    types.ConfigurationParams(
                        items=[types.ConfigurationItem(section="neuralCoder", scope_uri=uri)]
                    )
                )
                if answer and isinstance(answer[0], dict):
                    self.state.settings = answer[0]
            except Exception as error:  # a client that answers badly keeps the last settings
                log.warning("workspace/configuration failed: %s", error)
        return self.state.settings

    def config(self) -> dict[str, Any]:
        return convert.settings_to_config(self.state.settings)

    # -- analysis ---------------------------------------------------------------------------
    def survey_now(self, uri: str, version: int, text: str, config: dict[str, Any]) -> Survey:
        state = self.doc(uri)

        def options(approach: str) -> Any:
            return convert.options_for(config, approach)

        return survey_source(
            Path(to_fs_path(uri) or uri), text, options, lambda: state.version != version
        )

    async def survey(self, uri: str) -> tuple[str, Survey | None, NeuralCoderError | None]:
        """The survey of the buffer as it is now (cached per version)."""
        state = self.doc(uri)
        async with state.lock:
            return await self._survey(uri, state)

    async def _survey(
        self, uri: str, state: DocumentState
    ) -> tuple[str, Survey | None, NeuralCoderError | None]:
        while True:  # a survey overtaken by an edit is dropped and made again on the new text
            text = self.workspace.get_text_document(uri).source
            if state.survey is not None and state.survey[1] == text:
                return text, state.survey[2], None
            try:
                config = self.config()
                result = await self.in_worker(self.survey_now, uri, state.version, text, config)
            except Cancelled:
                continue
            except NeuralCoderError as error:
                return text, None, error
            state.survey = (state.version, text, result)
            return text, result, None

    def schedule(self, uri: str, version: int | None, delay: float) -> None:
        state = self.doc(uri)
        state.version = version if version is not None else state.version + 1
        if state.pending is not None:
            state.pending.cancel()
        state.pending = asyncio.get_running_loop().create_task(self.publish(uri, delay))

    async def publish(self, uri: str, delay: float) -> None:
        state = self.doc(uri)
        version = state.version
        try:
            if delay:
                await asyncio.sleep(delay)
            text, result, error = await self.survey(uri)
            if state.version != version:
                return
            lines = text.splitlines()
            if isinstance(error, ParseError):
                found = [convert.parse_error_diagnostic(error, lines)]
            elif error is not None:
                log.info("no diagnostics for %s: %s", uri, error.render())
                found = []
            else:
                assert result is not None
                found = convert.diagnostics(result, lines)
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=found)
            )
        except asyncio.CancelledError:
            pass
        except Exception as error:
            self.report(f"analysis of {uri}", error)

    # -- code actions -----------------------------------------------------------------------
    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        only = params.context.only
        text, result, error = await self.survey(uri)
        if result is None:
            if error is not None and not isinstance(error, ParseError):
                log.info("no code actions for %s: %s", uri, error.render())
            return []
        data = {"uri": uri}
        near = [
            d for d in params.context.diagnostics if d.source == convert.SOURCE
        ]  # the hint or the 1.x warning under the cursor
        hint = [d for d in near if d.code == "approaches"]
        legacy = [d for d in near if d.code == "inc-1x"]
        actions: list[types.CodeAction] = []
        with_disabled = self.supports_disabled()
        for verdict in result.verdicts:
            if verdict.refusal is not None and not with_disabled:
                continue
            kind = convert.source_kind(verdict.approach)
            if convert.wanted(only, kind):
                actions.append(convert.action(verdict.approach, kind, data, verdict.refusal))
            if hint and convert.wanted(only, QUICKFIX) and verdict.refusal is None:
                actions.append(convert.action(verdict.approach, QUICKFIX, data, None, hint))
        auto_possible = any(
            v.approach in lsp_auto.POST_TRAINING and v.refusal is None for v in result.verdicts
        )
        if auto_possible and convert.wanted(only, lsp_auto.KIND):
            actions.append(lsp_auto.auto_action(uri))
        if result.legacy:
            migrated = await self.migrated(uri, text)
            kind = f"{convert.KIND_PREFIX}.migrate"
            if migrated != text:
                if convert.wanted(only, kind):
                    actions.append(convert.action(convert.MIGRATE, kind, data))
                if convert.wanted(only, QUICKFIX) and (legacy or only is not None):
                    actions.append(convert.action(convert.MIGRATE, QUICKFIX, data, None, legacy))
        if not self.supports_resolve():
            for item in actions:
                if item.disabled is None and item.command is None:
                    await self.resolve(item)
        return actions

    def supports_resolve(self) -> bool:
        doc = self.client_capabilities.text_document
        support = doc.code_action.resolve_support if doc and doc.code_action else None
        return support is not None and "edit" in support.properties

    def supports_disabled(self) -> bool:
        doc = self.client_capabilities.text_document
        return bool(doc and doc.code_action and doc.code_action.disabled_support)

    async def migrated(self, uri: str, text: str) -> str:
        state = self.doc(uri)
        if state.migrated is not None and state.migrated[0] == text:
            return state.migrated[1]
        target = str(self.state.settings.get("migrateTarget") or "inc")
        new, _ = await self.in_worker(migrate_text, Path(to_fs_path(uri) or uri), text, target)
        state.migrated = (text, new)
        return new

    async def rewritten(self, uri: str, approach: str, text: str) -> tuple[str, str]:
        """The engine's text for `approach` on `text`, and its report's message."""
        path = Path(to_fs_path(uri) or uri)
        if approach == convert.MIGRATE:
            return await self.migrated(uri, text), "migrated to the INC 2.x API"
        options = convert.options_for(self.config(), approach)
        new, report = await self.in_worker(rewrite_source, path, text, options)
        return new, report.message

    async def resolve(self, item: types.CodeAction) -> types.CodeAction:
        data = item.data or {}
        uri, approach = data["uri"], data["approach"]
        document = self.workspace.get_text_document(uri)
        text = document.source
        new, _ = await self.rewritten(uri, approach, text)
        item.edit = convert.workspace_edit(uri, document.version, text, new)
        return item

    # -- commands -----------------------------------------------------------------------------
    async def run_command(self, approach: str, uri: str) -> dict[str, Any]:
        """Rewrite `uri` with the client's current settings and apply it through the client."""
        if approach not in (*APPROACHES, convert.MIGRATE):
            raise NeuralCoderError(
                f"unknown approach {approach!r}; choose one of: "
                + ", ".join((*APPROACHES, convert.MIGRATE))
            )
        await self.fetch_settings(uri)
        document = self.workspace.get_text_document(uri)
        text, version = document.source, document.version
        job = asyncio.ensure_future(self.rewritten(uri, approach, text))
        done, _ = await asyncio.wait({job}, timeout=PROGRESS_AFTER_S)
        if not done:
            await self.with_progress(job, f"neural-coder: {convert.title(approach)}")
        new, message = await job
        if new == text:
            return {"applied": False, "message": message}
        answer = await self.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(
                edit=convert.workspace_edit(uri, version, text, new),
                label=convert.title(approach),
            )
        )
        return {"applied": bool(answer.applied), "message": message}

    async def with_progress(self, job: asyncio.Future, title: str) -> None:
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return
        token = str(uuid.uuid4())
        await self.work_done_progress.create_async(token)
        started = time.monotonic()
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title))
        while not job.done():
            await asyncio.wait({job}, timeout=0.5)
            self.work_done_progress.report(
                token,
                types.WorkDoneProgressReport(message=f"{time.monotonic() - started:.0f} s"),
            )
        self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))


def create_server() -> NeuralCoderServer:
    server = NeuralCoderServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: NeuralCoderServer, params: types.InitializeParams) -> None:
        options = params.initialization_options  # clients without workspace/configuration
        if isinstance(options, dict):
            settings = options.get("neuralCoder", options)
            ls.state.settings = settings if isinstance(settings, dict) else {}

    @server.feature(types.INITIALIZED)
    async def initialized(ls: NeuralCoderServer, params: types.InitializedParams) -> None:
        await ls.fetch_settings()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration(
        ls: NeuralCoderServer, params: types.DidChangeConfigurationParams
    ) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get("neuralCoder"), dict):
            ls.state.settings = settings["neuralCoder"]
        else:
            await ls.fetch_settings()
        for uri in list(ls.state.documents):
            ls.doc(uri).survey = None
            if ls.workspace.get_notebook_document(notebook_uri=uri) is not None:
                lsp_notebooks.schedule(ls, uri, None, 0)
            else:
                ls.schedule(uri, None, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NeuralCoderServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, params.text_document.version, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NeuralCoderServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, params.text_document.version, ls.state.debounce_s)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NeuralCoderServer, params: types.DidCloseTextDocumentParams) -> None:
        state = ls.state.documents.pop(params.text_document.uri, None)
        if state is not None and state.pending is not None:
            state.pending.cancel()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_open(ls: NeuralCoderServer, params: types.DidOpenNotebookDocumentParams) -> None:
        document = params.notebook_document
        lsp_notebooks.schedule(ls, document.uri, document.version, 0)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_change(
        ls: NeuralCoderServer, params: types.DidChangeNotebookDocumentParams
    ) -> None:
        document = params.notebook_document
        lsp_notebooks.schedule(ls, document.uri, document.version, ls.state.debounce_s)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_close(ls: NeuralCoderServer, params: types.DidCloseNotebookDocumentParams) -> None:
        state = ls.state.documents.pop(params.notebook_document.uri, None)
        if state is not None and state.pending is not None:
            state.pending.cancel()
        for cell in params.cell_text_documents:
            ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=cell.uri, diagnostics=[])
            )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True),
    )
    async def code_action(
        ls: NeuralCoderServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        try:
            notebook = lsp_notebooks.notebook_of(ls, params.text_document.uri)
            if notebook is not None:  # a cell: the actions are the notebook's
                return await lsp_notebooks.code_actions(ls, notebook, params)
            return await ls.code_actions(params)
        except Exception as error:
            ls.report(f"code actions for {params.text_document.uri}", error)
            return []

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(
        ls: NeuralCoderServer, item: types.CodeAction
    ) -> types.CodeAction:
        try:
            if isinstance(item.data, dict) and item.data.get("notebook"):
                return await lsp_notebooks.resolve(ls, item)
            return await ls.resolve(item)
        except NeuralCoderError as error:  # e.g. the buffer changed into something refused
            item.disabled = types.CodeActionDisabled(reason=error.message)
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=error.render())
            )
            return item
        except Exception as error:
            ls.report(f"{item.title}", error)
            return item

    def command(approach_from_args: bool) -> Callable[..., Any]:
        async def run(ls: NeuralCoderServer, *args: Any) -> dict[str, Any]:
            try:
                if approach_from_args:
                    uri, approach = args[0], args[1]
                else:
                    uri, approach = args[0], convert.MIGRATE
                return await ls.run_command(str(approach), str(uri))
            except NeuralCoderError as error:
                ls.window_show_message(
                    types.ShowMessageParams(type=types.MessageType.Error, message=error.render())
                )
                return {"applied": False, "message": error.render()}
            except Exception as error:
                ls.report("command", error)
                return {"applied": False, "message": str(error)}

        return run

    server.command("neuralCoder.optimize")(command(True))
    server.command("neuralCoder.migrate")(command(False))

    @server.command(lsp_auto.COMMAND)
    async def auto(ls: NeuralCoderServer, *args: Any) -> dict[str, Any]:
        try:
            return await lsp_auto.run_auto(ls, str(args[0]))
        except NeuralCoderError as error:
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=error.render())
            )
            return {"applied": False, "winner": None, "message": error.render()}
        except Exception as error:
            ls.report("auto", error)
            return {"applied": False, "winner": None, "message": str(error)}

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: NeuralCoderServer, params: None) -> None:
        for state in ls.state.documents.values():
            if state.pending is not None:
                state.pending.cancel()
        ls.worker.shutdown(wait=False, cancel_futures=True)

    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="neural-coder lsp: %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    create_server().start_io()
