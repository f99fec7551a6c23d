"""Running one candidate: a fresh Python process on a temporary copy of the script.

The copy sits in the script's own folder (relative paths and local imports work)
under a hidden name, gets the user's arguments, and runs with
`NEURAL_CODER_REPORT` naming a JSON-lines file outside that folder: the runtime's
`fit` and `benchmark.fit` append their figures there (`runtime/summary.py:record`).
The script's output goes to a log file; nothing is read from it but, on failure,
its last lines for the message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_ENV = "NEURAL_CODER_REPORT"
#: the runtime's benchmark cycles a short loader until this many batches are timed
MIN_BATCHES_ENV = "NEURAL_CODER_BENCHMARK_MIN_BATCHES"
MIN_TIMED_BATCHES = 30
POLL_SECONDS = 0.1

#: called with each record as it arrives (for progress)
OnRecord = Callable[[dict[str, Any]], None]


@dataclass
class RunResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _read_records(path: Path, seen: int) -> list[dict[str, Any]]:
    """Complete lines from index `seen` on (a line still being written is left for later)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the part after the last newline is not complete yet
    return [json.loads(line) for line in lines[seen:] if line.strip()]


@dataclass(frozen=True)
class Runnable:
    """How a candidate's program is run: the copy's suffix, what is written into it (the
    program's text by default), and the command before the copy's name (python)."""

    suffix: str = ".py"
    render: Callable[[str], str] | None = None
    launcher: tuple[str, ...] = ()

    def command(self, copy: Path) -> list[str]:
        return [*(self.launcher or (sys.executable,)), str(copy)]


def run_candidate(
    script: Path,
    text: str,
    name: str,
    args: Sequence[str],
    timeout: float,
    on_record: OnRecord | None = None,
    runnable: Runnable = Runnable(),
) -> RunResult:
    folder = script.resolve().parent
    result = RunResult()
    with tempfile.TemporaryDirectory(prefix="neural-coder-auto-") as scratch:
        report = Path(scratch) / "records.jsonl"
        log_path = Path(scratch) / "output.log"
        descriptor, copy_name = tempfile.mkstemp(
            prefix=f".{script.stem}.neural-coder-auto-{name}-", suffix=runnable.suffix, dir=folder
        )
        copy = Path(copy_name)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
                handle.write(runnable.render(text) if runnable.render else text)
            env = {
                **os.environ,
                REPORT_ENV: str(report),
                "NEURAL_CODER_PROGRESS": "0",
                MIN_BATCHES_ENV: str(MIN_TIMED_BATCHES),
            }
            began = time.monotonic()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [*runnable.command(copy), *args],
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
                try:
                    while process.poll() is None:
                        if time.monotonic() - began > timeout:
                            process.kill()
                            process.wait()
                            result.timed_out = True
                            break
                        _collect(report, result, on_record)
                        time.sleep(POLL_SECONDS)
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            result.seconds = time.monotonic() - began
            result.returncode = process.returncode
            _collect(report, result, on_record)
            if not result.ok:
                result.log_tail = _tail(log_path)
        finally:
            copy.unlink(missing_ok=True)
    return result


def _collect(report: Path, result: RunResult, on_record: OnRecord | None) -> None:
    for record in _read_records(report, len(result.records)):
        result.records.append(record)
        if on_record is not None:
            on_record(record)


def _tail(path: Path, lines: int = 12) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])
