"""`auto`: try the post-training approaches on the person's own script, measure each
in a fresh process, and keep the fastest one within the accuracy goal.

Engine-level entry points for every front end: `auto_source` (text in, result
out, nothing written) and `auto_file` (writes the winner's rewrite in place with
a `.bak`, or only reports it for a dry run). `progress` receives
`(candidate, event)` calls: "rewritten", "started", a runtime record's kind
("fit", "benchmark"), and "finished".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neural_coder.api import Output, is_notebook
from neural_coder.errors import NeuralCoderError
from neural_coder.files import read_text, unified_diff, write_atomic
from neural_coder.options import PTQOptions

from .candidates import ALLOWED_APPROACHES, DEFAULT_APPROACHES, build_candidates
from .choose import CandidateResult, choose, figures_from
from .run import Runnable, run_candidate

__all__ = [
    "ALLOWED_APPROACHES",
    "DEFAULT_APPROACHES",
    "AutoOptions",
    "AutoResult",
    "CandidateResult",
    "Runnable",
    "auto_file",
    "auto_source",
]

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class AutoOptions:
    approaches: tuple[str, ...] = DEFAULT_APPROACHES
    criterion: str = "relative"  # or "absolute"
    tolerable_loss: float = 0.01
    timeout: float = 600.0  # seconds per candidate run
    args: tuple[str, ...] = ()  # the script's own arguments

    def check(self) -> None:
        unknown = [a for a in self.approaches if a not in ALLOWED_APPROACHES]
        if unknown or not self.approaches:
            raise NeuralCoderError(
                f"--approaches: {', '.join(unknown) or 'none given'}; choose from "
                f"{', '.join(ALLOWED_APPROACHES)} (fp32 is always measured)"
            )
        PTQOptions(criterion=self.criterion, tolerable_loss=self.tolerable_loss).check()
        if self.timeout <= 0:
            raise NeuralCoderError(f"--timeout must be > 0 seconds, got {self.timeout}")


@dataclass
class AutoResult:
    script: Path
    options: AutoOptions
    candidates: list[CandidateResult]
    winner: str | None = None  # None when nothing beats fp32
    accuracy_checked: bool = False
    fp32_accuracy: float | None = None
    new_text: str | None = None  # the winner's rewrite
    message: str = ""
    diff: str = ""
    output: Path | None = None
    backup: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": str(self.script),
            "args": list(self.options.args),
            "goal": {
                "criterion": self.options.criterion,
                "tolerable_loss": self.options.tolerable_loss,
            },
            "accuracy_checked": self.accuracy_checked,
            "fp32_accuracy": self.fp32_accuracy,
            "winner": self.winner,
            "written": self.output is not None,
            "output": str(self.output) if self.output else None,
            "backup": str(self.backup) if self.backup else None,
            "message": self.message,
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def auto_source(
    path: Path,
    text: str,
    options: AutoOptions = AutoOptions(),
    progress: Progress | None = None,
    runnable: Runnable | None = None,
) -> AutoResult:
    """Measure every candidate on `text` (the file at `path`, run from its folder);
    `runnable` says how a candidate's text is run (a notebook's cells are run by IPython)."""
    options.check()
    notify = progress or (lambda _candidate, _event: None)
    ptq = PTQOptions(criterion=options.criterion, tolerable_loss=options.tolerable_loss)
    candidates = build_candidates(path, text, options.approaches, ptq)
    results: list[CandidateResult] = []
    for candidate in candidates:
        result = CandidateResult(candidate.name, candidate.status, candidate.reason)
        results.append(result)
        if candidate.measuring_text is None:
            notify(candidate.name, "finished")
            continue
        result.final_text = candidate.final_text
        notify(candidate.name, "rewritten")
        notify(candidate.name, "started")
        run = run_candidate(
            path,
            candidate.measuring_text,
            candidate.name,
            options.args,
            options.timeout,
            on_record=lambda record, name=candidate.name: notify(name, str(record.get("kind"))),
            runnable=runnable or Runnable(),
        )
        figures_from(result, run)
        notify(candidate.name, "finished")
    outcome = AutoResult(script=path, options=options, candidates=results)
    outcome.winner, outcome.accuracy_checked, outcome.fp32_accuracy, outcome.message = choose(
        results, options.criterion, options.tolerable_loss
    )
    if outcome.winner is not None:
        winner = next(r for r in results if r.name == outcome.winner)
        outcome.new_text = winner.final_text
        outcome.diff = unified_diff(path, text, winner.final_text or text)
    return outcome


def auto_file(
    path: Path | str,
    options: AutoOptions = AutoOptions(),
    output: Output | None = None,
    progress: Progress | None = None,
) -> AutoResult:
    """`auto_source` on a file; the winner's rewrite is written unless `output.dry_run`."""
    output = output or Output()
    path = Path(path)
    if is_notebook(path):
        # imported here: the notebook layer is built on this module
        from neural_coder.notebooks.auto import auto_notebook_file

        return auto_notebook_file(path, options, output, progress)
    text = read_text(path)
    result = auto_source(path, text, options, progress)
    if result.new_text is not None:
        write_winner(result, text, result.new_text, output)
    return result


def write_winner(result: AutoResult, read: str, content: str, output: Output) -> None:
    """Write `content` (the winner's file) unless a dry run; refused when the file is no
    longer `read`, the text auto started from."""
    path = result.script
    if output.dry_run:
        return
    if read_text(path) != read:
        raise NeuralCoderError(
            "the file changed while auto ran; nothing was written", path=path, hint="run auto again"
        )
    result.output = output.path or path
    result.backup = write_atomic(
        result.output, content, backup=output.backup and result.output == path
    )
    result.message += f"; written to {result.output}" + (
        f" (the original is in {result.backup})" if result.backup else ""
    )
