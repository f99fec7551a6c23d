"""`Progress`: the stderr progress bar of calibration, evaluation, tuning and benchmarks."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO


# -- progress bar -------------------------------------------------------------------
class Progress:
    """A tiny stderr progress bar (no dependency).

    It draws only on a terminal (or when `NEURAL_CODER_PROGRESS=1`; `=0` turns it
    off everywhere) and only once `delay` seconds have passed, so short steps and
    logs in files stay clean. `total=None` shows a counter without a bar.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        delay: float = 2.0,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total if total is None or total > 0 else None
        self.desc = desc
        self.unit = unit
        self.delay = delay
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.count = 0
        self.note = ""
        self.start = clock()
        self._last_draw = -math.inf
        self._drawn = False
        self.enabled = _progress_enabled(self.stream) if enabled is None else enabled

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, note: str | None = None) -> None:
        self.count += n
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < self.delay or now - self._last_draw < 0.1:
            return
        self._draw(now)

    def set_count(self, count: int, note: str | None = None) -> None:
        self.update(count - self.count, note)

    def render(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        if self.total:
            frac = min(self.count / self.total, 1.0)
            width = 24
            filled = int(frac * width)
            bar = "#" * filled + "-" * (width - filled)
            left = (self.total - self.count) / rate if rate > 0 else math.inf
            eta = _clock_text(left) if math.isfinite(left) else "?"
            text = (
                f"{self.desc}: {frac:4.0%} |{bar}| {self.count}/{self.total} "
                f"[{_clock_text(elapsed)}<{eta}, {rate:.2f} {self.unit}/s]"
            )
        else:
            text = f"{self.desc}: {self.count} {self.unit} [{_clock_text(elapsed)}, {rate:.2f} {self.unit}/s]"
        return f"{text} {self.note}".rstrip()

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn = True
        self.stream.write("\r" + self.render(now) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _progress_enabled(stream: TextIO) -> bool:
    env = os.environ.get("NEURAL_CODER_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def _clock_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
