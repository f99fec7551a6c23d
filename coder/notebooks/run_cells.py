"""`python -m neural_coder.notebooks.run_cells NOTEBOOK [ARGS...]`: run a notebook's code
cells in order in one IPython shell, as Jupyter's kernel would (magics and `!` lines
included), with `sys.argv` = [NOTEBOOK, *ARGS]. Exit status 1 at the first cell that
fails (its traceback on stdout), 0 when every cell ran. `auto` runs its candidates so."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    if len(argv) < 1:
        print(__doc__)
        return 2
    notebook = nbformat.read(argv[0], as_version=4)
    sys.argv = list(argv)
    shell = InteractiveShell.instance()
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        if not shell.run_cell(cell.source, store_history=False).success:
            print(f"neural-coder: cell {number} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
