"""`neural-coder auto`'s own overhead per candidate.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_auto.py [--rounds N] [SCRIPT]

SCRIPT defaults to tests/auto/scripts/cnn_eval.py (copied to a temporary folder).
One round runs, in an order that alternates between rounds:

* `auto`: the engine (`auto_source`: rewrites, one fresh process per candidate,
  the benchmark call inside each, the records read back), nothing written;
* `bare`: each candidate's script as a person would run it: the original for
  fp32, `optimize --approach <candidate>`'s output for the others (the fit and
  its tuning, no benchmark), one `python` process each.

Printed: wall time and CPU time (this process and its children, user + sys) of
both; their ratio; and the overhead per candidate, (auto - bare) / candidates.
CPU time is the figure to read on a shared machine: waiting for a core does not
count. Part of the overhead is the measurement itself (the benchmark's warm-up
and timed batches, `MIN_TIMED_BATCHES` of them at least).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neural_coder.api import rewrite_source
from neural_coder.auto import AutoOptions, auto_source
from neural_coder.auto.candidates import DEFAULT_APPROACHES, bf16_unavailable, options_for
from neural_coder.options import PTQOptions

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCRIPT = ROOT / "tests" / "auto" / "scripts" / "cnn_eval.py"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(run: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", nargs="?", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    approaches = tuple(a for a in DEFAULT_APPROACHES if a != "bf16" or bf16_unavailable() is None)
    with tempfile.TemporaryDirectory(prefix="bench-auto-") as folder:
        script = Path(folder) / args.script.name
        shutil.copy(args.script, script)
        text = script.read_text()
        bare_scripts = [script]
        for approach in approaches:
            rewritten, _ = rewrite_source(script, text, options_for(approach, PTQOptions()))
            path = Path(folder) / f"bare_{approach}_{script.name}"
            path.write_text(rewritten)
            bare_scripts.append(path)
        env = {**os.environ, "NEURAL_CODER_PROGRESS": "0"}

        def bare() -> None:
            for path in bare_scripts:
                subprocess.run(
                    [sys.executable, str(path)],
                    cwd=folder,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )

        def auto() -> None:
            result = auto_source(script, text, AutoOptions(approaches=approaches))
            failed = [c.name for c in result.candidates if c.status in ("failed", "refused")]
            if failed:
                raise SystemExit(f"candidates did not run: {failed}")

        bare()  # writes the script's checkpoint files once, warms the file cache
        figures: dict[str, list[tuple[float, float]]] = {"auto": [], "bare": []}
        for round_ in range(args.rounds):
            order = [("auto", auto), ("bare", bare)]
            for name, run in order if round_ % 2 == 0 else reversed(order):
                figures[name].append(_timed(run))
    count = len(bare_scripts)
    wall = {k: statistics.median(w for w, _ in v) for k, v in figures.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in figures.items()}
    print(
        f"script: {args.script.name}; candidates: fp32, {', '.join(approaches)}; rounds: {args.rounds}"
    )
    print(f"{'':8}{'auto s':>10}{'bare s':>10}{'auto/bare':>11}{'overhead/candidate s':>23}")
    for label, values in (("wall", wall), ("cpu", cpu)):
        print(
            f"{label:8}{values['auto']:>10.2f}{values['bare']:>10.2f}"
            f"{values['auto'] / values['bare']:>11.2f}"
            f"{(values['auto'] - values['bare']) / count:>23.2f}"
        )


if __name__ == "__main__":
    main()
