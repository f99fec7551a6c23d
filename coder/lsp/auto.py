"""The language server's "Auto: measure and keep the best": `auto_source` (the engine
behind `neural-coder auto`) on the unsaved buffer, with `$/progress` per candidate; the
winner comes back as a WorkspaceEdit and the table as a message."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from neural_coder.auto import (
    ALLOWED_APPROACHES,
    DEFAULT_APPROACHES,
    AutoOptions,
    AutoResult,
    auto_source,
)
from neural_coder.auto.table import STEPS, summary
from neural_coder.errors import ConfigError, NeuralCoderError
from neural_coder.notebooks.auto import auto_cells

from . import convert
from . import notebooks as lsp_notebooks

if TYPE_CHECKING:
    from .server import NeuralCoderServer

COMMAND = "neuralCoder.auto"
TITLE = "Neural Coder: Auto: measure and keep the best"
KIND = f"{convert.KIND_PREFIX}.auto"
#: candidates `auto` can rewrite: it is offered when one of them is
POST_TRAINING = ("ptq-dynamic", "ptq-static", "bf16")


def auto_action(uri: str) -> types.CodeAction:
    """A command, not an edit: measuring takes minutes, so it runs only when chosen."""
    return types.CodeAction(
        title=TITLE, kind=KIND, command=types.Command(title=TITLE, command=COMMAND, arguments=[uri])
    )


def auto_options(settings: dict[str, Any]) -> AutoOptions:
    """The client's `neuralCoder.auto` settings: approaches, tolerableLoss, criterion,
    timeout (seconds per candidate), args (the script's own arguments)."""
    section = settings.get("auto") or {}
    if not isinstance(section, dict):
        raise ConfigError("the neuralCoder.auto setting must be an object")
    approaches = section.get("approaches") or DEFAULT_APPROACHES
    if isinstance(approaches, str):
        approaches = [a.strip() for a in approaches.split(",") if a.strip()]
    try:
        options = AutoOptions(
            approaches=tuple(approaches),
            criterion=str(section.get("criterion") or "relative"),
            tolerable_loss=float(section.get("tolerableLoss", 0.01)),
            timeout=float(section.get("timeout") or 600.0),
            args=tuple(str(a) for a in section.get("args") or ()),
        )
        options.check()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"neuralCoder.auto: {error}") from None
    except NeuralCoderError as error:
        raise ConfigError(
            f"neuralCoder.auto: {error.message}",
            hint=f"candidates: {', '.join(ALLOWED_APPROACHES)}",
        ) from None
    return options


class Progress:
    """`$/progress` from the engine's (candidate, event) calls, made on a worker thread."""

    def __init__(self, ls: NeuralCoderServer, candidates: int) -> None:
        self.ls, self.loop = ls, asyncio.get_running_loop()
        self.total = candidates * sum(STEPS.values())
        self.done = 0
        self.token: str | None = None

    async def begin(self, title: str) -> None:
        window = self.ls.client_capabilities.window
        if window is None or not window.work_done_progress:
            return
        self.token = str(uuid.uuid4())
        await self.ls.work_done_progress.create_async(self.token)
        self.ls.work_done_progress.begin(
            self.token, types.WorkDoneProgressBegin(title=title, percentage=0)
        )

    def __call__(self, candidate: str, event: str) -> None:
        self.loop.call_soon_threadsafe(self._report, candidate, event)

    def _report(self, candidate: str, event: str) -> None:
        self.done += STEPS.get(event, 0)
        if self.token is not None:
            percentage = min(99, 100 * self.done // max(self.total, 1))
            self.ls.work_done_progress.report(
                self.token,
                types.WorkDoneProgressReport(
                    message=f"{candidate}: {event}", percentage=percentage
                ),
            )

    def end(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


async def run_auto(ls: NeuralCoderServer, uri: str) -> dict[str, Any]:
    """Measure, then apply the winner through the client; the answer holds every figure.
    `uri` is a script, or a notebook (or one of its cells): then its code cells are run."""
    await ls.fetch_settings(uri)
    options = auto_options(ls.state.settings)
    notebook = lsp_notebooks.notebook_of(ls, uri)
    if notebook is None and ls.workspace.get_notebook_document(notebook_uri=uri) is not None:
        notebook = uri
    progress = Progress(ls, 1 + len(options.approaches))
    await progress.begin(f"neural-coder auto: {Path(to_fs_path(notebook or uri) or uri).name}")
    try:
        if notebook is not None:
            result, edit = await _auto_notebook(ls, notebook, options, progress)
        else:
            result, edit = await _auto_script(ls, uri, options, progress)
    finally:
        progress.end("done")
    message = summary(result)
    applied = False
    if edit is not None:
        answer = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"Neural Coder: Auto ({result.winner})")
        )
        applied = bool(answer.applied)
    ls.window_show_message(
        types.ShowMessageParams(
            type=types.MessageType.Info, message=f"neural-coder auto\n{message}"
        )
    )
    return {
        "applied": applied,
        "winner": result.winner,
        "message": message,
        "report": result.to_dict(),
    }


CHANGED = NeuralCoderError(
    "the document changed while auto ran; nothing was applied", hint="run Auto again"
)


async def _auto_script(
    ls: NeuralCoderServer, uri: str, options: AutoOptions, progress: Progress
) -> tuple[AutoResult, types.WorkspaceEdit | None]:
    document = ls.workspace.get_text_document(uri)
    text, version = document.source, document.version
    # its own thread, not the analysis worker: the runs take minutes of waiting
    result = await asyncio.to_thread(
        auto_source, Path(to_fs_path(uri) or uri), text, options, progress
    )
    if result.new_text is None:
        return result, None
    if ls.workspace.get_text_document(uri).source != text:
        raise CHANGED
    return result, convert.workspace_edit(uri, version, text, result.new_text)


async def _auto_notebook(
    ls: NeuralCoderServer, uri: str, options: AutoOptions, progress: Progress
) -> tuple[AutoResult, types.WorkspaceEdit | None]:
    shot = lsp_notebooks.snapshot(ls, uri)
    if shot is None:
        raise NeuralCoderError(f"the notebook {uri} is not open")
    result, winner = await asyncio.to_thread(auto_cells, shot.path, shot.cells, options, progress)
    if not winner.changed:
        return result, None
    now = lsp_notebooks.snapshot(ls, uri)
    if now is None or now.cells != shot.cells:
        raise CHANGED
    return result, lsp_notebooks.cells_edit(shot, winner)
