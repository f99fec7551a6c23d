"""Jupyter notebooks: as files for every command, in a running kernel (the `%neural_coder`
magic, `neural_coder.enable`), and behind the JupyterLab extension (a server extension).

Everything goes through `engine`, which is built on the text API of `neural_coder.api`.
"""

from neural_coder.notebooks.engine import (
    CellsResult,
    inspect_cells,
    migrate_cells,
    optimize_cells,
    revert_cells,
)
from neural_coder.notebooks.files import (
    inspect_notebook,
    migrate_notebook_file,
    optimize_notebook_file,
    read_notebook,
    revert_notebook_file,
)

__all__ = [
    "CellsResult",
    "inspect_cells",
    "inspect_notebook",
    "migrate_cells",
    "migrate_notebook_file",
    "optimize_cells",
    "optimize_notebook_file",
    "read_notebook",
    "revert_cells",
    "revert_notebook_file",
]
