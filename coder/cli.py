"""The `neural-coder` command line."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import click

from neural_coder import __version__
from neural_coder.commands import PATHS, auto_command, echo_reports, revert_command
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options, load_config_file
from neural_coder.report import FileReport, exit_code, write_json
from neural_coder.transforms.lazy import lazy_module

# analysis, planning and libcst load when a command runs, not for --help (tests/coder/test_startup.py)
if TYPE_CHECKING:
    from neural_coder import api
else:
    api = lazy_module("neural_coder.api")

EXAMPLES = """Examples:

\b
  neural-coder optimize train.py --approach pruning+qat      # hooks into the training loop
  neural-coder optimize train.py -a 'distillation>pruning>qat' # stages over the epochs
  neural-coder optimize train.py -a pruning-then-ptq-static  # prune in training, then fit
  neural-coder optimize eval.py --approach ptq-static --diff # see the change, write nothing
  neural-coder optimize src/ --config compress.yaml          # every script below src/
  neural-coder migrate legacy_inc/ --target runtime          # INC 1.x -> 2.x API
  neural-coder inspect train.py                              # what analysis finds, with lines

\b
Exit codes: 0 done, 1 a file failed (refused, or could not be written),
2 usage error or a file that does not parse.
"""

JOBS_HELP = "Files rewritten at once, each in its own process (default: one per core)."


def _pair(kind: type) -> click.ParamType:
    class Pair(click.ParamType):
        name = "A,B"

        def convert(
            self, value: object, param: click.Parameter | None, ctx: click.Context | None
        ) -> object:
            if isinstance(value, tuple):
                return value
            parts = [p.strip() for p in str(value).split(",")]
            if len(parts) != 2:
                self.fail(f"{value!r} is not two comma-separated values", param, ctx)
            try:
                return tuple(kind(p) for p in parts)
            except ValueError:
                self.fail(f"{value!r}: expected two {kind.__name__} values", param, ctx)

    return Pair()


class _Guarded(click.Group):
    """Any exception that escapes a command becomes a one-line internal error (exit 1); the
    traceback is shown with -v/--verbose."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:
            click.echo(f"neural-coder: internal error: {type(error).__name__}: {error}", err=True)
            if {"-v", "--verbose"} & set(sys.argv[1:]):
                click.echo(traceback.format_exc(), err=True)
            else:
                click.echo("  (run again with -v for the traceback, and please report it)", err=True)
            ctx.exit(1)


@click.group(
    cls=_Guarded, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES
)
@click.version_option(__version__, prog_name="neural-coder")
def main() -> None:
    """Rewrite PyTorch / Hugging Face scripts so that they compress their models."""


@main.command("optimize")
@click.argument("scripts", nargs=-1, required=True, type=PATHS)
@click.option(
    "--approach",
    "-a",
    help="qat, pruning, distillation, or a '+'-joined combination trained together in one "
    "shot (e.g. pruning+qat); or one of ptq-static, ptq-dynamic, ptq-auto, bf16, benchmark; or "
    "a multi-shot pipeline, stages run one after another, joined by '>' (quote it: "
    "'distillation>pruning>qat') or '-then-' (pruning-then-ptq-static): training stages split "
    "the epochs (qat last), and a post-training last stage fits the trained model.",
)
@click.option(
    "--stage-epochs",
    help="Multi-shot: the epochs of each training stage, comma-separated (e.g. 2,2,1); "
    "default: the script's epoch count split evenly.",
)
@click.option(
    "--target",
    type=click.Choice(["runtime", "inc"]),
    help="Import the bundled runtime (default: the rewritten script runs with nothing else "
    "installed) or Intel Neural Compressor 2.x. (migrate defaults to inc: its users have INC.)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A yaml with approach, target and per-technique settings.",
)
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A Distiller-style schedule (pruners, regularizers, quantizers, lr_schedulers, "
    "policies over epochs); it sets the techniques, so no --approach. The rewritten script "
    "reads it at run time from this path.",
)
@click.option(
    "--target-sparsity", type=float, help="Pruning: final fraction of pruned weights (default 0.5)."
)
@click.option(
    "--pattern",
    help="Pruning pattern: NxM (4x1, 1x1 = unstructured, channelx1) or N:M (2:4). Default 4x1.",
)
@click.option(
    "--pruning-type",
    help="Pruning criterion: magnitude, snip_momentum (default), snip, gradient, pattern_lock, <criterion>_progressive.",
)
@click.option(
    "--pruning-scope",
    type=click.Choice(["global", "local"]),
    help="One threshold across layers (global, default) or per layer.",
)
@click.option("--start-step", type=int, help="Pruning: first optimizer step that prunes.")
@click.option(
    "--end-step", type=int, help="Pruning: last pruning step (default: fitted to 80% of the run)."
)
@click.option(
    "--shrink/--no-shrink",
    default=None,
    help="Pruning: remove the pruned channels when training ends, so the model is smaller and "
    "faster (default: on for channelx1 / 1xchannel with --target runtime; needs torch-pruning).",
)
@click.option(
    "--qat-backend", type=click.Choice(["default", "ipex"]), help="QAT backend (default: torch.ao)."
)
@click.option(
    "--teacher",
    help="Distillation teacher: a checkpoint (.pt/.pth/.bin) loaded into a copy of the model, an "
    "expression, or 'copy': a frozen copy of the model as it is when training starts (default: the "
    "script's own frozen teacher, else that copy when the model is loaded trained).",
)
@click.option("--temperature", type=float, help="Distillation temperature (default 1.0).")
@click.option(
    "--loss-types",
    type=_pair(str),
    help="Distillation losses: student-vs-labels,student-vs-teacher (default CE,KL).",
)
@click.option(
    "--loss-weights",
    type=_pair(float),
    help="Distillation loss weights summing to 1 (default 0.5,0.5).",
)
@click.option(
    "--save-dir",
    help="ptq-*/bf16 on a script that reads nothing of the trained model after training: "
    "the folder (relative to where the script runs) the compressed model is saved to after "
    "the fit (default: beside the script's checkpoints, else neural_coder_output/<approach>).",
)
@click.option("--diff", "dry_run", is_flag=True, help="Print the diff; write nothing.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the result here instead of in place (one script only).",
)
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
    help="The project folder: the script's imports of modules below it (and next to the "
    "script, always) are analysed and edited with it.",
)
@click.option(
    "--single-file", is_flag=True, help="Rewrite the script alone; do not follow its local imports."
)
@click.option("-v", "--verbose", is_flag=True, help="Show what analysis found in each file.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help=JOBS_HELP)
def optimize_command(scripts: tuple[Path, ...], approach: str | None, target: str | None, config_path: Path | None,
                     recipe_path: Path | None,
                     target_sparsity: float | None, pattern: str | None, pruning_type: str | None,
                     pruning_scope: str | None, start_step: int | None, end_step: int | None,
                     shrink: bool | None, qat_backend: str | None, teacher: str | None, temperature: float | None,
                     loss_types: tuple[str, str] | None, loss_weights: tuple[float, float] | None,
                     stage_epochs: str | None, save_dir: str | None, dry_run: bool, output: Path | None, no_backup: bool, report_path: Path | None,
                     project_root: Path | None, single_file: bool, verbose: bool, jobs: int | None) -> None:  # fmt: skip
    """Insert compression into SCRIPTS (files, notebooks, or folders of them), rewritten in
    place with SCRIPT.bak kept. `neural-coder example-config` prints a --config yaml to start from."""
    if output is not None and (len(scripts) != 1 or scripts[0].is_dir()):
        raise click.UsageError("-o/--output takes exactly one script")
    try:
        config = load_config_file(config_path) if config_path else {}
        options = build_options(
            approach,
            target,
            config,
            {
                "pruning": {"target_sparsity": target_sparsity, "pattern": pattern, "pruning_type": pruning_type,
                            "pruning_scope": pruning_scope, "start_step": start_step, "end_step": end_step, "shrink": shrink},
                "qat": {"backend": qat_backend},
                "distillation": {"teacher": teacher, "temperature": temperature, "loss_types": loss_types,
                                 "loss_weights": loss_weights},
                "pipeline": {"stage_epochs": stage_epochs},
                "ptq": {"save_dir": save_dir},
            },
            recipe=None if recipe_path is None else str(recipe_path),
        )  # fmt: skip
    except NeuralCoderError as error:
        raise click.UsageError(error.render()) from None
    reports = api.optimize(
        scripts,
        options,
        api.Output(dry_run=dry_run, path=output, backup=not no_backup),
        api.Project(root=project_root, follow_imports=not single_file),
        jobs,
    )
    echo_reports(reports, verbose, dry_run)
    if report_path is not None:
        write_json(reports, report_path)
    sys.exit(exit_code(reports))


@main.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=PATHS)
@click.option(
    "--target",
    type=click.Choice(["inc", "runtime"]),
    default="inc",
    show_default=True,
    help="Import Intel Neural Compressor 2.x (the default here: a 1.x user has INC installed), "
    "or the bundled runtime (runs with no other install; optimize's default).",
)
@click.option("--diff", "dry_run", is_flag=True, help="Print the diff; write nothing.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the result here (one script only).",
)
@click.option("--no-backup", is_flag=True, help="Do not keep SCRIPT.bak when rewriting in place.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the report as JSON.",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help=JOBS_HELP)
def migrate_command(paths: tuple[Path, ...], target: str, dry_run: bool, output: Path | None, no_backup: bool,
                    report_path: Path | None, jobs: int | None) -> None:  # fmt: skip
    """Upgrade Intel Neural Compressor 1.x scripts (files or folders) and their conf.yaml to the 2.x API."""
    if output is not None and (len(paths) != 1 or paths[0].is_dir()):
        raise click.UsageError("-o/--output takes exactly one script")
    reports = api.migrate(
        paths, target, api.Output(dry_run=dry_run, path=output, backup=not no_backup), jobs
    )
    echo_reports(reports, True, dry_run)
    if report_path is not None:
        write_json(reports, report_path)
    sys.exit(exit_code(reports))


@main.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=PATHS)
def inspect_command(paths: tuple[Path, ...]) -> None:
    """Print what analysis finds in each script or notebook (or folder of them), with lines."""
    failures: list[FileReport] = []
    for path, found in api.inspect_files(paths):
        if isinstance(found, FileReport):
            click.echo(found.message, err=True)
            failures.append(found)
            continue
        click.echo(str(path))
        for line in found:
            click.echo(f"  {line}")
    sys.exit(exit_code(failures))


@main.command("example-config")
def example_config_command() -> None:
    """Print an example --config yaml: every setting at its default, with what it means."""
    from neural_coder.example_config import example_config

    click.echo(example_config(), nl=False)


main.add_command(revert_command)
main.add_command(auto_command)


@main.command("lsp")
def lsp_command() -> None:
    """Run the language server over stdio (for editors; needs the `lsp` extra)."""
    try:
        from neural_coder.lsp.server import main as serve
    except ImportError as error:
        raise click.UsageError(
            f"the language server needs pygls and lsprotocol ({error}); "
            "install them with: pip install 'neural-coder[lsp]'"
        ) from None
    serve()
