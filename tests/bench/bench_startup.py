"""Start-up time of the command line, next to Python's and libcst's own.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_startup.py [--quick]
[--baseline OTHER_PYTHON] (with a baseline, e.g. the .venv of another checkout, every row
is also timed with that interpreter, in the same shuffled turns: before and after side by
side).

Each row is a fresh interpreter (subprocess), the rows taking turns in a shuffled order;
a figure is the median over the turns of the wall clock and of the child's CPU time (user
+ system: what load from other processes on a shared machine does not inflate), and
"beyond python" subtracts the median of `python -c pass`. Rows:

* `import libcst`: the floor of any libcst tool;
* `neural-coder --help`;
* the import set of a one-file optimize: every module of ours and of our dependencies
  that `optimize one.py --approach qat --diff` has loaded when it is done (found by
  running it once, in-process), imported and nothing run;
* the same less black (and pathspec, platformdirs, which only black uses): what the rest
  of the tool costs, black being imported only to format the inserted snippets;
* `optimize one.py --approach qat|ptq-static|pruning --diff` itself, end to end (for
  information: the rewrite is timed by the rewrite-speed benchmark);
* `migrate legacy.py --diff`, end to end, on a 1.x PTQ script and on one full of TODOs (with
  the conf.yaml files they read); it imports neither libcst.codemod, the matchers nor black;
* `import libcst.codemod` (which pulls in libcst.matchers): what optimize and migrate no
  longer pay.

Every child runs with bytecode caching on, as an installed package does (pip compiles its
modules when it installs them), the caches in a temporary folder (PYTHONPYCACHEPREFIX: no
file is written next to the sources); the warm-up turn writes them. With
PYTHONDONTWRITEBYTECODE set, as on some development machines, an editable checkout would
compile every module of ours at every start instead (about 0.06 s CPU here).

The goal (issue 15): `--help` and the optimize import set <= 0.25 s beyond Python.
"""

from __future__ import annotations

import json
import os
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
BASELINE = sys.argv[sys.argv.index("--baseline") + 1] if "--baseline" in sys.argv else None
SAMPLE = ROOT / "samples" / "flat_script.py"
LEGACY = ROOT / "samples" / "legacy"
LEGACY_SCRIPTS = ("ptq_argparse_main.py", "legacy_todos.py")
APPROACHES = ("qat", "ptq-static", "pruning")
PYCACHE = tempfile.TemporaryDirectory(prefix="bench_startup_pycache_")
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": PYCACHE.name,
}
OURS_AND_DEPENDENCIES = (
    "neural_coder",
    "libcst",
    "black",
    "click",
    "yaml",
    "pathspec",
    "platformdirs",
)

BLACK_AND_ITS_OWN = ("black", "pathspec", "platformdirs")

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


def optimize_import_set(script: str, python: str = PYTHON) -> list[str]:
    code = LIST_MODULES.format(script=script, roots=OURS_AND_DEPENDENCIES)
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, env=ENV
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("MODULES:"))
    return json.loads(line.removeprefix("MODULES:"))


def rows_for(python: str, folder: str) -> tuple[dict[str, list[str]], list[str]]:
    script = str(Path(folder) / "one.py")
    Path(script).write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    for path in [*(LEGACY / name for name in LEGACY_SCRIPTS), *LEGACY.glob("*.yaml")]:
        (Path(folder) / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    modules = optimize_import_set(script, python)
    # what the snippets' formatting costs: black and the packages only black uses
    without_black = [m for m in modules if m.split(".")[0] not in BLACK_AND_ITS_OWN]
    cli = [
        python,
        "-c",
        "import sys; from neural_coder.cli import main; sys.argv[0] = 'neural-coder'; main()",
    ]
    rows = {
        "python -c pass": [python, "-c", "pass"],
        "import libcst": [python, "-c", "import libcst"],
        "import libcst.codemod (+ matchers)": [python, "-c", "import libcst.codemod"],
        "neural-coder --help": [*cli, "--help"],
        "import neural_coder.api (optimize starts)": [python, "-c", "import neural_coder.api"],
        "optimize import set": [
            python, "-c", f"import importlib\nfor m in {modules!r}: importlib.import_module(m)"
        ],
        "optimize import set less black": [
            python, "-c", f"import importlib\nfor m in {without_black!r}: importlib.import_module(m)"
        ],
    }  # fmt: skip
    for approach in APPROACHES:
        rows[f"optimize --approach {approach} (end to end)"] = [
            *cli, "optimize", script, "--approach", approach, "--diff"
        ]  # fmt: skip
    for name in LEGACY_SCRIPTS:
        legacy = str(Path(folder) / name)
        rows[f"migrate {name} (end to end)"] = [*cli, "migrate", legacy, "--diff"]
    return rows, modules


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child, which load from other
    processes on a shared machine does not inflate)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    pythons = {"": PYTHON} if BASELINE is None else {"after": PYTHON, "before": BASELINE}
    with tempfile.TemporaryDirectory() as folder:
        rows: dict[tuple[str, str], list[str]] = {}
        modules: dict[str, list[str]] = {}
        for label, python in pythons.items():
            sub = Path(folder) / (label or "run")
            sub.mkdir()
            these, modules[label] = rows_for(python, str(sub))
            rows.update({(key, label): cmd for key, cmd in these.items()})
        walls: dict[tuple[str, str], list[float]] = {k: [] for k in rows}
        cpus: dict[tuple[str, str], list[float]] = {k: [] for k in rows}
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
    print(f"start-up, median of {TURNS} turns, seconds (goal: <= 0.250 beyond python)")
    print(f"  {'':<52}{'wall':>7}{'beyond python':>15}{'CPU':>7}{'beyond python':>15}")
    for label in pythons:
        base = ("python -c pass", label)
        wall0, cpu0 = statistics.median(walls[base]), statistics.median(cpus[base])
        if label:
            print(f"  {label}: {pythons[label]}")
        for key, row_label in rows:
            if row_label != label:
                continue
            wall, cpu = statistics.median(walls[key, label]), statistics.median(cpus[key, label])
            name = key if key != "optimize import set" else f"{key} ({len(modules[label])} modules)"
            print(f"  {name:<52}{wall:>7.3f}{wall - wall0:>15.3f}{cpu:>7.3f}{cpu - cpu0:>15.3f}")
        lazy = [
            m for m in ("black", "yaml", "libcst.codemod", "libcst.matchers") if m in modules[label]
        ]
        print(f"  loaded by the qat optimize run where used (lazily): {', '.join(lazy) or 'none'}")


if __name__ == "__main__":
    main()
