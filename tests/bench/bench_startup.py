"""Start-up time of the command line, next to Python's and libcst's own.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_startup.py [--quick]

Each row is a fresh interpreter (subprocess), the rows taking turns in a shuffled order;
a figure is the median over the turns of the wall clock and of the child's CPU time (user
+ system: what load from other processes on a shared machine does not inflate), and
"beyond python" subtracts the median of `python -c pass`. Rows:

* `import libcst`: the floor of any libcst tool;
* `neural-coder --help`;
* the import set of a one-file optimize: every module of ours and of our dependencies
  that `optimize one.py --approach qat --diff` has loaded when it is done (found by
  running it once, in-process), imported and nothing run;
* `optimize one.py --approach qat --diff` itself, end to end (for information: the
  rewrite is timed by the rewrite-speed benchmark).

The goal (issue 15): `--help` and the optimize import set <= 0.25 s beyond Python.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TURNS = 5 if "--quick" in sys.argv else 15
PYTHON = sys.executable
SAMPLE = ROOT / "samples" / "flat_script.py"
OURS_AND_DEPENDENCIES = (
    "neural_coder",
    "libcst",
    "black",
    "click",
    "yaml",
    "pathspec",
    "platformdirs",
)

LIST_MODULES = """
import json, sys
sys.argv = ["neural-coder", "optimize", {script!r}, "--approach", "qat", "--diff"]
from neural_coder.cli import main
try:
    main()
except SystemExit:
    pass
roots = {roots!r}
names = [m for m in list(sys.modules) if m.split(".")[0] in roots]
print("MODULES:" + json.dumps(names))
"""


def optimize_import_set(script: str) -> list[str]:
    code = LIST_MODULES.format(script=script, roots=OURS_AND_DEPENDENCIES)
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("MODULES:"))
    return json.loads(line.removeprefix("MODULES:"))


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child, which load from other
    processes on a shared machine does not inflate)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        script = str(Path(folder) / "one.py")
        Path(script).write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
        modules = optimize_import_set(script)
        cli = [
            PYTHON,
            "-c",
            "import sys; from neural_coder.cli import main; sys.argv[0] = 'neural-coder'; main()",
        ]
        rows = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "import libcst": [PYTHON, "-c", "import libcst"],
            "neural-coder --help": [*cli, "--help"],
            "import neural_coder.api (optimize starts)": [PYTHON, "-c", "import neural_coder.api"],
            f"optimize import set ({len(modules)} modules)": [
                PYTHON, "-c", f"import importlib\nfor m in {modules!r}: importlib.import_module(m)"
            ],
            "optimize one.py --diff (end to end)": [*cli, "optimize", script, "--approach", "qat", "--diff"],
        }  # fmt: skip
        walls: dict[str, list[float]] = {k: [] for k in rows}
        cpus: dict[str, list[float]] = {k: [] for k in rows}
        order = list(rows)
        shuffle = random.Random(0).shuffle
        for cmd in rows.values():  # warm the file cache
            run(cmd)
        for _ in range(TURNS):
            shuffle(order)
            for key in order:
                elapsed, cpu = run(rows[key])
                walls[key].append(elapsed)
                cpus[key].append(cpu)
    wall0 = statistics.median(walls["python -c pass"])
    cpu0 = statistics.median(cpus["python -c pass"])
    print(f"start-up, median of {TURNS} turns, seconds (goal: <= 0.250 beyond python)")
    print(f"  {'':<44}{'wall':>7}{'beyond python':>15}{'CPU':>7}{'beyond python':>15}")
    for key in rows:
        wall, cpu = statistics.median(walls[key]), statistics.median(cpus[key])
        print(f"  {key:<44}{wall:>7.3f}{wall - wall0:>15.3f}{cpu:>7.3f}{cpu - cpu0:>15.3f}")
    lazy = [m for m in ("black", "yaml", "libcst.codemod", "libcst.matchers") if m in modules]
    print(f"  loaded by the optimize run where used (lazily): {', '.join(lazy) or 'none'}")


if __name__ == "__main__":
    main()
