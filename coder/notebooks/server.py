"""The Jupyter server extension behind the JupyterLab toolbar menu: JSON in, JSON out.

POST {base_url}neural-coder/rewrite with
    {"path": "train.ipynb", "command": "optimize" | "migrate", "approach": "qat",
     "target": null, "settings": {...}, "cells": [{"cell_type": "code", "source": "..."}, ...]}
(every cell of the live notebook, in order) answers
    {"status": "Transformed" | "Unchanged" | "Failed", "message": "...", "placed": [...],
     "warnings": [...], "changed": [3, 6], "cells": [{"index": 2, "source": "..."}, ...],
     "error": null | {"message": "...", "cell": 5, "line": 3, "hint": "..."}}
with the new source of each changed cell (0-based `index`; `cell` numbers count from 1).

`"command": "auto"` (with optional "approaches", "tolerable_loss", "criterion",
"timeout", "args") measures fp32 and each candidate on the cells, each run in a fresh
process from the notebook's folder, and answers the winner's cells the same way, plus
"winner" (null when nothing beats fp32), "table" (plain lines) and "report" (every figure).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from neural_coder.errors import ConfigError, NeuralCoderError
from neural_coder.notebooks.engine import CellsResult, migrate_cells, optimize_cells
from neural_coder.options import build_options

ROUTE = "neural-coder/rewrite"


def rewrite_request(request: dict[str, Any], root: Path) -> dict[str, Any]:
    """The answer to one request (see the module's docstring); never raises for bad input."""
    try:
        cells = request.get("cells")
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ConfigError("'cells' must be a list of {cell_type, source} objects")
        path = root / str(request.get("path") or "notebook.ipynb")
        code = [
            (number, _text(cell.get("source", "")))
            for number, cell in enumerate(cells, 1)
            if cell.get("cell_type") == "code"
        ]
        command = request.get("command", "optimize")
        if command == "optimize":
            options = build_options(
                request.get("approach"), request.get("target"), request.get("settings") or {}, {}
            )
            result = optimize_cells(path, code, options)
        elif command == "migrate":
            result = migrate_cells(path, code, request.get("target") or "inc")
        elif command == "auto":
            return _auto_answer(path, code, request)
        else:
            raise ConfigError(f"unknown command {command!r}; choose optimize, migrate or auto")
    except NeuralCoderError as error:
        return _failed(error)
    return _answer(result)


def _failed(error: NeuralCoderError) -> dict[str, Any]:
    return {
        "status": "Failed",
        "message": error.render(),
        "error": {
            "message": error.message,
            "cell": error.cell,
            "line": error.line,
            "hint": error.hint,
        },
        "placed": [],
        "warnings": [],
        "changed": [],
        "cells": [],
    }


def _answer(result: CellsResult) -> dict[str, Any]:
    report = result.report
    return {
        "status": report.status.value,
        "message": report.message,
        "placed": report.placed,
        "warnings": report.warnings,
        "changed": result.changed,
        "cells": [
            {"index": number - 1, "source": new}
            for number, old, new in zip(result.numbers, result.before, result.sources)
            if old != new
        ],
        "error": None,
    }


def _auto_answer(
    path: Path, code: list[tuple[int, str]], request: dict[str, Any]
) -> dict[str, Any]:
    """`neural-coder auto` on the live cells (run from the notebook's folder): the winner's
    cells as for optimize, plus `winner`, `table` (plain lines) and `report` (the figures,
    as `auto --report` writes them)."""
    from neural_coder.auto import DEFAULT_APPROACHES, AutoOptions
    from neural_coder.auto.table import summary
    from neural_coder.notebooks.auto import auto_cells

    try:
        options = AutoOptions(
            approaches=tuple(request.get("approaches") or DEFAULT_APPROACHES),
            criterion=str(request.get("criterion") or "relative"),
            tolerable_loss=float(request.get("tolerable_loss", 0.01)),
            timeout=float(request.get("timeout") or 600.0),
            args=tuple(str(a) for a in request.get("args") or ()),
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"auto: {error}") from None
    auto, cells = auto_cells(path, code, options)
    answer = _answer(cells)
    answer["message"] = auto.message
    answer["winner"] = auto.winner
    answer["table"] = summary(auto)
    answer["report"] = auto.to_dict()
    return answer


def _text(source: object) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    import tornado.web
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join

    root = Path(serverapp.root_dir)

    class RewriteHandler(APIHandler):
        @tornado.web.authenticated
        async def post(self) -> None:
            # off the event loop: auto runs for minutes, and the server must go on serving
            request = self.get_json_body() or {}
            self.finish(json.dumps(await asyncio.to_thread(rewrite_request, request, root)))

    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], ROUTE)
    web_app.add_handlers(".*$", [(route, RewriteHandler)])
    serverapp.log.info("neural-coder: %s is served", route)
