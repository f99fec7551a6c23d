"""The final table and the per-candidate progress bars, drawn with rich.

`rows` formats the figures of an `AutoResult` (the same numbers the JSON report
holds); `render` lays them out; `ProgressBars` follows the engine's progress
events.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import AutoResult, CandidateResult
from .candidates import FP32

COLUMNS = (
    "candidate",
    "status",
    "accuracy (vs fp32)",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "samples/s",
    "size",
    "speed-up",
)
#: wide enough for every column when the output is not a terminal (a log, a pipe)
MIN_WIDTH = 132
#: how far a candidate's run has come, per event
STEPS = {"rewritten": 1, "started": 1, "fit": 1, "benchmark": 1, "finished": 1}


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    if value < 1024:
        return f"{value} B"
    if value < 1024**2:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024**2:.1f} MiB"


def _accuracy(result: CandidateResult, checked: bool) -> str:
    if result.status != "measured":
        return "-"
    if not checked or result.accuracy is None:
        return "not measured"
    text = f"{result.accuracy:.4g}"
    if result.name != FP32 and result.accuracy_change is not None:
        text += f" ({100 * result.accuracy_change:+.2f}%)"
    return text


def rows(result: AutoResult) -> list[tuple[str, ...]]:
    out = []
    for r in result.candidates:
        name = r.name + (" *" if r.name == result.winner else "")
        out.append(
            (
                name,
                r.status,
                _accuracy(r, result.accuracy_checked),
                _number(r.p50_ms),
                _number(r.p90_ms),
                _number(r.p99_ms),
                _number(r.throughput, 1),
                _size(r.size_bytes),
                "-" if r.speedup is None else f"{r.speedup:.2f}x",
            )
        )
    return out


def render(result: AutoResult, console: Console) -> None:
    if not console.is_terminal and console.width < MIN_WIDTH:
        console.width = MIN_WIDTH
    caption = (
        f"goal: accuracy loss <= {result.options.tolerable_loss:g} ({result.options.criterion})"
        if result.accuracy_checked
        else "accuracy not checked: the script has no evaluation the rewrite could use"
    )
    table = Table(title=f"neural-coder auto: {result.script}", caption=caption)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in COLUMNS[:3] else "right")
    for row in rows(result):
        table.add_row(*row)
    console.print(table)
    for r in result.candidates:
        if r.reason:
            console.print(f"[bold]{r.name}[/bold] {r.status}: {escape(r.reason)}", highlight=False)
    console.print(result.message, highlight=False)


class ProgressBars:
    """One bar per candidate, advanced by the engine's progress events."""

    def __init__(self, names: list[str], console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.fields[phase]:<10}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks = {
            name: self.progress.add_task(name, total=sum(STEPS.values()), phase="waiting")
            for name in names
        }

    def __call__(self, candidate: str, event: str) -> None:
        task = self.tasks.get(candidate)
        if task is None:
            return
        if event == "finished":
            self.progress.update(task, completed=sum(STEPS.values()), phase="done")
        else:
            self.progress.update(task, advance=STEPS.get(event, 0), phase=event)

    def __enter__(self) -> ProgressBars:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.progress.stop()


def summary(result: AutoResult) -> str:
    """The table as plain lines (for an editor's message or a notebook toolbar)."""
    lines = []
    for row in rows(result):
        name, status, accuracy, p50, p90, p99, throughput, size, speedup = row
        if status != "measured":
            lines.append(f"{name}: {status}")
            continue
        lines.append(
            f"{name}: accuracy {accuracy}, latency p50/p90/p99 {p50}/{p90}/{p99} ms, "
            f"{throughput} samples/s, {size}, {speedup}"
        )
    for r in result.candidates:
        if r.reason:
            lines.append(f"{r.name} {r.status}: {r.reason}")
    if not result.accuracy_checked:
        lines.append("accuracy not checked: the script has no evaluation the rewrite could use")
    lines.append(result.message)
    return "\n".join(lines)
