"""The `revert` and `auto` commands (added to the `neural-coder` group in cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from neural_coder.errors import NeuralCoderError
from neural_coder.report import FileReport, exit_code, write_json
from neural_coder.transforms.lazy import lazy_module

if TYPE_CHECKING:
    from neural_coder import api
else:
    api = lazy_module("neural_coder.api")

# An existing file or folder: a missing path is a usage error (exit 2) for every command.
PATHS = click.Path(path_type=Path, exists=True)


def echo_reports(reports: list[FileReport], verbose: bool, dry_run: bool) -> None:
    """Each file's diff (with --diff) and its report, as every command prints them."""
    for report in reports:
        if dry_run and report.diff:
            click.echo(report.diff, nl=False)
        click.echo(report.render(verbose, dry_run=dry_run), err=dry_run)


@click.command("revert")
@click.argument("scripts", nargs=-1, required=True, type=PATHS)
@click.option("--diff", "dry_run", is_flag=True, help="Print the diff; write nothing.")
@click.option("--no-backup", is_flag=True, help="Do not keep SCRIPT.bak when rewriting in place.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the per-file report as JSON.",
)
@click.option(
    "--project",
    "project_root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The project folder, as given to optimize: the modules of it that the script "
    "imports are reverted with the script.",
)
@click.option(
    "--single-file",
    is_flag=True,
    help="Revert the script alone, as optimize --single-file wrote it.",
)
def revert_command(scripts: tuple[Path, ...], dry_run: bool, no_backup: bool, report_path: Path | None,
                   project_root: Path | None, single_file: bool) -> None:  # fmt: skip
    """Remove what neural-coder inserted in SCRIPTS, giving back the originals byte for byte.

    A project's entry script is reverted with the modules optimize rewrote with it, all or
    none. A file whose inserted lines were edited since is refused, with those lines listed."""
    from neural_coder.revert import revert

    reports = revert(
        scripts,
        api.Output(dry_run=dry_run, backup=not no_backup),
        api.Project(root=project_root, follow_imports=not single_file),
    )
    echo_reports(reports, False, dry_run)
    if report_path is not None:
        write_json(reports, report_path)
    sys.exit(exit_code(reports))


@click.command("auto", context_settings={"ignore_unknown_options": False})
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--approaches",
    default="ptq-dynamic,ptq-static,bf16",
    show_default=True,
    help="Comma-separated candidates besides fp32: ptq-dynamic, ptq-static, ptq-auto, bf16.",
)
@click.option(
    "--tolerable-loss",
    type=float,
    default=0.01,
    show_default=True,
    help="Accuracy loss allowed against fp32.",
)
@click.option(
    "--criterion",
    type=click.Choice(["relative", "absolute"]),
    default="relative",
    show_default=True,
    help="Whether --tolerable-loss is a fraction of the fp32 accuracy or a difference.",
)
@click.option(
    "--timeout", type=float, default=600.0, show_default=True, help="Seconds per candidate run."
)
@click.option("--diff", "dry_run", is_flag=True, help="Show the winner's diff; write nothing.")
@click.option("--no-backup", is_flag=True, help="Do not keep SCRIPT.bak when rewriting in place.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every figure as JSON.",
)
def auto_command(script: Path, script_args: tuple[str, ...], approaches: str, tolerable_loss: float,
                 criterion: str, timeout: float, dry_run: bool, no_backup: bool,
                 report_path: Path | None) -> None:  # fmt: skip
    """Try fp32 and each approach on SCRIPT (run as `python SCRIPT [-- SCRIPT_ARGS]`), measure
    them, and rewrite SCRIPT with the fastest one within the accuracy goal."""
    from rich.console import Console

    from neural_coder.auto import AutoOptions, auto_file
    from neural_coder.auto.table import ProgressBars, render

    options = AutoOptions(
        approaches=tuple(a.strip() for a in approaches.split(",") if a.strip()),
        criterion=criterion,
        tolerable_loss=tolerable_loss,
        timeout=timeout,
        args=script_args,
    )
    try:
        options.check()
    except NeuralCoderError as error:
        raise click.UsageError(error.render()) from None
    console = Console(stderr=dry_run, highlight=False)
    try:
        with ProgressBars(["fp32", *options.approaches], console) as bars:
            result = auto_file(
                script, options, api.Output(dry_run=dry_run, backup=not no_backup), progress=bars
            )
    except NeuralCoderError as error:
        click.echo(error.render(), err=True)
        sys.exit(error.exit_code)
    render(result, console)
    if dry_run and result.diff:
        click.echo(result.diff, nl=False)
    if report_path is not None:
        result.write_json(report_path)
    sys.exit(0)
