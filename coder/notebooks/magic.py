"""`%load_ext neural_coder` then `%neural_coder optimize --approach qat`: the CLI, run on
the notebook this kernel is running; and `neural_coder.enable(...)`, its Python form."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from neural_coder.api import Output, optimize_file
from neural_coder.errors import ConfigError, NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import FileReport

USAGE = "usage: %neural_coder optimize|migrate|inspect [CLI options] [--notebook PATH]"
RELOAD = (
    "The notebook on disk was rewritten. To see it: with the neural-coder JupyterLab "
    "extension, use its toolbar menu instead (cells change in place); otherwise reload the "
    "notebook (File > Reload Notebook from Disk) and run it again from the top."
)


def find_notebook(user_ns: dict[str, Any], explicit: str | None = None) -> tuple[Path, str]:
    """The notebook this kernel runs, and how it was found."""
    if explicit:
        return Path(explicit).expanduser(), "--notebook"
    for name, value in (
        ("JPY_SESSION_NAME", os.environ.get("JPY_SESSION_NAME")),
        ("__session__", user_ns.get("__session__")),
        ("__vsc_ipynb_file__", user_ns.get("__vsc_ipynb_file__")),
    ):
        if isinstance(value, str) and value.endswith(".ipynb"):
            return Path(value).expanduser(), name
    raise ConfigError(
        "cannot tell which notebook this kernel is running (no JPY_SESSION_NAME, "
        "__session__ or __vsc_ipynb_file__)",
        hint="name it: %neural_coder optimize --approach qat --notebook train.ipynb",
    )


def run_magic(line: str, user_ns: dict[str, Any]) -> int:
    """Run one `%neural_coder` line; print what happened; the CLI's exit code."""
    from neural_coder.cli import main

    words = shlex.split(line)
    explicit = None
    if "--notebook" in words:
        at = words.index("--notebook")
        if at + 1 >= len(words):
            print(USAGE)
            return 2
        explicit = words[at + 1]
        del words[at : at + 2]
    if not words or words[0] not in ("optimize", "migrate", "inspect"):
        print(USAGE)
        return 2
    try:
        notebook, how = find_notebook(user_ns, explicit)
    except NeuralCoderError as error:
        print(error.render())
        return 2  # a usage error: the magic needs to be told which notebook
    print(f"neural-coder: notebook {notebook} (from {how})")
    # the notebook's rewritten lines speak for themselves; a dry run's diff goes to stdout too
    try:
        main.main([*words, str(notebook)], prog_name="neural-coder", standalone_mode=False)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    except Exception as error:  # click's usage errors, shown as the CLI shows them
        import click

        if isinstance(error, click.ClickException):
            error.show()
            return error.exit_code
        raise
    if code == 0 and words[0] != "inspect" and "--diff" not in words:
        print(RELOAD)
    return code


def load_ipython_extension(ipython: Any) -> None:
    def neural_coder(line: str) -> None:
        run_magic(line, ipython.user_ns)

    neural_coder.__doc__ = USAGE
    ipython.register_magic_function(neural_coder, "line", "neural_coder")


def enable(
    path: str | os.PathLike[str],
    approach: str,
    target: str | None = None,
    *,
    diff: bool = False,
    backup: bool = True,
    **settings: dict[str, Any],
) -> FileReport:
    """Rewrite one notebook or script so that it compresses its model; the report.

    `settings` are the --config yaml's sections, e.g.
    `enable("train.ipynb", "pruning", pruning={"target_sparsity": 0.8})`.
    Raises NeuralCoderError when the options are wrong or the file is refused.
    """
    options = build_options(approach, target, settings, {})
    report = optimize_file(Path(path), options, Output(dry_run=diff, backup=backup))
    if report.exit_code:
        raise NeuralCoderError(report.message)
    return report
