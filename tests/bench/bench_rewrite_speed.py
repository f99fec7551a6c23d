"""Rewrite speed against libcst's own floor, and the import time of the CLI.

Not collected by pytest. Run:
    .venv/bin/python tests/bench/bench_rewrite_speed.py [--files N | --all] [--repeat R]
        [--approach A ...] [--profile APPROACH] [--no-import]

Files: the development corpus (`NEURAL_CODER_CORPUS`, default /work/scratch/corpus; the
scripts its ENTRIES.tsv lists), the N largest (default 10). Without a corpus, real-sized
scripts of our own: each sample grown to about 40 KiB with helper functions of the kind real
scripts carry (argument parsing, metrics, logging).

For each file: the floor, libcst's `parse_module(text).code` (the round trip any libcst tool
pays), and `rewrite_source` (parse, analysis, plan, edits, verification and the second-run
check: everything but the write) for each approach; the ratio is ours / floor. A refusal
(a `NeuralCoderError`: no loop for a training approach, no teacher for distillation...) is
timed too and reported apart: it stops after analysis or planning. Times are the CPU time of
this thread (`time.thread_time`: waiting for a core another process holds does not count),
the best of R runs; the floor is measured next to each file's rewrites.

The import figures are `python -c pass`, `python -c "import libcst"` and
`python -c "import neural_coder.cli"`, each run as a fresh process, in turns, the best of 7;
the CPU time of the child (user + system) and the wall time.

Runs with PYTHONHASHSEED=0 unless it is set: a few analysis outcomes still depend on the
order of sets of strings, and one seed keeps before/after figures comparable.

`--projects`: the scripts that import modules of their own project (a model zoo beside
`main.py`), each rewritten with those modules as the CLI reads them (`rewrite_sources`);
the floor is then the round trip of every file read.

`--profile APPROACH` runs cProfile over every file's rewrite with that approach and prints
the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import libcst as cst

from neural_coder.analysis.project import discover_project
from neural_coder.api import rewrite_source, rewrite_sources
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("NEURAL_CODER_CORPUS", "/work/scratch/corpus"))
APPROACHES = [
    "qat",
    "pruning",
    "distillation",
    "pruning+qat",
    "ptq-static",
    "ptq-dynamic",
    "bf16",
]
OWN_SIZE = 40_000

HELPER = '''

def collate_and_log_{n}(batch, labels, args, step={n}):
    """Per-class counts, a running mean and a log line, as real scripts compute them."""
    counts = {{}}
    total = 0.0
    for row, label in zip(batch, labels):
        key = int(label)
        counts[key] = counts.get(key, 0) + 1
        value = float(row.abs().mean())
        if value > args.threshold:
            total += value
        else:
            total -= value / 2
    ratio = total / max(len(labels), 1)
    if step % args.log_every == 0:
        logger.info(f"step {{step}}: {{len(counts)}} classes, ratio {{ratio:.3f}}")
    return counts, ratio
'''


def corpus_files(count: int | None) -> list[Path]:
    entries = CORPUS / "ENTRIES.tsv"
    if not entries.is_file():
        return []
    paths = []
    for row in entries.read_text().splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) >= 2 and (CORPUS / fields[1]).is_file():
            paths.append(CORPUS / fields[1])
    paths.sort(key=lambda p: p.stat().st_size, reverse=True)
    return paths if count is None else paths[:count]


def own_files(count: int | None) -> list[tuple[Path, str]]:
    """Samples grown to a real size: helpers inserted before the first top-level `def`."""
    samples = sorted((REPO / "samples").glob("*.py"), key=lambda p: p.stat().st_size)[::-1]
    grown = []
    for path in samples[: count or len(samples)]:
        text = path.read_text()
        head, found, tail = text.partition("\ndef ")
        if not found:
            continue
        helpers: list[str] = []
        while len(text) + sum(map(len, helpers)) < OWN_SIZE:
            helpers.append(HELPER.format(n=len(helpers)))
        if "logger" not in text:
            head += "\nimport logging\n\nlogger = logging.getLogger(__name__)\n"
        grown.append((path, head + "".join(helpers) + "\n\ndef " + tail))
    return grown


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best


def floor(texts: Mapping[Path, str]) -> None:
    for text in texts.values():
        cst.parse_module(text).code  # noqa: B018


def rewrite(path: Path, texts: Mapping[Path, str], approach: str) -> str | None:
    """None on success, the refusal's message otherwise. More than one text: the script
    and the modules of its project it imports, as the CLI reads them."""
    options = build_options(approach, None, {}, {})
    try:
        if len(texts) > 1:
            rewrite_sources(path, texts, options)
        else:
            rewrite_source(path, texts[path], options)
    except NeuralCoderError as error:
        return error.message
    return None


def with_projects(files: list[tuple[Path, str]]) -> list[tuple[Path, dict[Path, str]]]:
    """The scripts that import modules of their own project, each with those modules."""
    found = []
    for path, text in files:
        texts = discover_project(path, text)
        if len(texts) > 1:
            found.append((path, texts))
    return found


def bench_files(
    files: list[tuple[Path, dict[Path, str]]], approaches: list[str], repeat: int
) -> None:
    width = max(len(short(p)) for p, _ in files)
    print(
        f"{'file':<{width}}  {'KiB':>5}  {'floor ms':>8}  "
        + "  ".join(f"{a:>11}" for a in approaches)
    )
    totals_floor = 0.0
    per_approach: dict[str, list[float]] = {a: [0.0, 0.0] for a in approaches}  # ours, floor
    refusals: dict[str, list[float]] = {a: [0.0, 0.0] for a in approaches}
    refused_count = {a: 0 for a in approaches}
    for path, texts in files:
        base = best_of(max(repeat, 3), lambda texts=texts: floor(texts))
        cells = []
        for approach in approaches:
            outcome: list[str | None] = []

            def run(
                path: Path = path,
                texts: dict[Path, str] = texts,
                approach: str = approach,
                outcome: list[str | None] = outcome,
            ) -> None:
                outcome.append(rewrite(path, texts, approach))

            ours = best_of(repeat, run)
            base = min(base, best_of(1, lambda texts=texts: floor(texts)))
            refused = outcome[-1] is not None
            bucket = refusals if refused else per_approach
            bucket[approach][0] += ours
            bucket[approach][1] += base
            refused_count[approach] += refused
            cells.append(f"{ours / base:>10.1f}{'r' if refused else 'x'}")
        totals_floor += base
        size = sum(len(t) for t in texts.values())
        print(
            f"{short(path):<{width}}  {size / 1024:>5.1f}  {base * 1000:>8.1f}  " + "  ".join(cells)
        )
    print(
        f"\n(x: rewritten, r: refused; ratio = our time / floor; floor total {totals_floor * 1000:.0f} ms"
        f" for {sum(len(t) for _, ts in files for t in ts.values()) / 1024:.0f} KiB)\n"
    )
    print(f"{'approach':<13} {'rewritten':>9} {'ratio':>6}   {'refused':>7} {'ratio':>6}")
    all_ours = all_floor = 0.0
    for approach in approaches:
        ours, base = per_approach[approach]
        r_ours, r_base = refusals[approach]
        all_ours += ours
        all_floor += base
        rewritten_count = len(files) - refused_count[approach]
        print(
            f"{approach:<13} {rewritten_count:>9} {ours / base if base else float('nan'):>6.1f}   "
            f"{refused_count[approach]:>7} {r_ours / r_base if r_base else float('nan'):>6.1f}"
        )
    if all_floor:
        print(f"{'all':<13} {'':>9} {all_ours / all_floor:>6.1f}   (rewrites only, time-weighted)")


def short(path: Path) -> str:
    for root in (CORPUS, REPO):
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def bench_imports(runs: int = 7) -> None:
    python = sys.executable
    commands = {
        "python -c pass": "pass",
        "import libcst": "import libcst",
        "import neural_coder.cli": "import neural_coder.cli",
    }
    best: dict[str, tuple[float, float]] = {k: (float("inf"), float("inf")) for k in commands}
    for _ in range(runs):
        for label, code in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([python, "-c", code], check=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best[label] = (min(best[label][0], cpu), min(best[label][1], wall))
    base_cpu = best["python -c pass"][0]
    print(f"\n{'import':<24} {'cpu ms':>7} {'wall ms':>8} {'beyond python (cpu)':>20}")
    for label, (cpu, wall) in best.items():
        print(
            f"{label:<24} {cpu * 1000:>7.0f} {wall * 1000:>8.0f} {(cpu - base_cpu) * 1000:>17.0f} ms"
        )


def profile(files: list[tuple[Path, dict[Path, str]]], approach: str, top: int = 40) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for path, texts in files:
        rewrite(path, texts, approach)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    if "PYTHONHASHSEED" not in os.environ:
        # some analysis outcomes still follow set order (a refusal in one run, a rewrite in
        # the next): one seed makes runs comparable
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10, help="the N largest corpus scripts")
    parser.add_argument("--all", action="store_true", help="every corpus script")
    parser.add_argument("--repeat", type=int, default=1, help="best of R rewrites per file")
    parser.add_argument("--approach", action="append", choices=APPROACHES)
    parser.add_argument("--profile", choices=APPROACHES)
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument(
        "--projects",
        action="store_true",
        help="the scripts that import modules of their own project, rewritten with them "
        "(as the CLI does); the floor is the round trip of every file read",
    )
    args = parser.parse_args()
    count = None if args.all else args.files
    paths = corpus_files(None if args.projects else count)
    if paths:
        read = [(p, p.read_text(encoding="utf-8")) for p in paths]
        print(f"corpus: {CORPUS} ({len(read)} scripts)")
    elif args.projects:
        read = [(p, p.read_text()) for p in sorted((REPO / "samples").glob("*_project/*.py"))]
        print(f"no corpus at {CORPUS}: the sample projects")
    else:
        read = own_files(count)
        print(f"no corpus at {CORPUS}: {len(read)} samples grown to ~{OWN_SIZE // 1024} KiB")
    if args.projects:
        files = with_projects(read)[:count]
        print(f"{len(files)} of them import modules of their project")
    else:
        files = [(path, {path: text}) for path, text in read]
    if args.profile:
        profile(files, args.profile)
        return
    bench_files(files, args.approach or APPROACHES, args.repeat)
    if not args.no_import:
        bench_imports()


if __name__ == "__main__":
    main()
