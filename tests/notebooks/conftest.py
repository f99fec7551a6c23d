"""Notebook test helpers: the sample notebook, and small notebooks made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLES

nbformat = pytest.importorskip("nbformat", reason="the jupyter extra is not installed")

SAMPLE_NOTEBOOK = SAMPLES / "notebooks" / "train_classifier.ipynb"


def write_notebook(path: Path, *cells: tuple[str, str]) -> Path:
    """(cell_type, source) pairs -> a notebook file with a Python kernelspec."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    make = {"code": new_code_cell, "markdown": new_markdown_cell}
    notebook = new_notebook(
        cells=[make[kind](source) for kind, source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def sample_notebook(tmp_path: Path) -> Path:
    target = tmp_path / "train.ipynb"
    target.write_text(SAMPLE_NOTEBOOK.read_text())
    return target


def code_sources(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
