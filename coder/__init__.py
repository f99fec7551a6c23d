"""neural_coder: rewrite PyTorch / Hugging Face scripts so that they compress their models."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def enable(path: Any, approach: str, target: str | None = None, **kwargs: Any) -> Any:
    """One line for a notebook or script: `neural_coder.enable("train.ipynb", approach="qat")`
    rewrites it in place (keeping a .bak) and returns the report."""
    from neural_coder.notebooks.magic import enable as enable_file

    return enable_file(path, approach, target, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext neural_coder` registers the `%neural_coder` magic."""
    from neural_coder.notebooks.magic import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "neural_coder.notebooks.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "neural-coder-jupyterlab"}]
