"""Run neural-coder over a folder of real scripts, every approach, and tabulate what happened.

    python tools/corpus_runner.py FOLDER_OR_ENTRIES... [--approaches qat,pruning] [--json out.json]
                                  [--details] [--jobs 2] [--timeout 120]

An argument is a folder (every *.py in it that uses torch / transformers / lightning is an
entry; a folder holding ENTRIES.tsv uses that list) or an entries file (one path per line,
or `style<TAB>path` rows with a header; paths relative to the file). Each (script, approach)
pair runs in-process through the engine API (`neural_coder.api.optimize`) on a temporary
copy of the script's project folder, under a timeout. Per pair it records: changed or
refused (and the refusal's class), whether every changed file compiles, whether the rewrite
reads no name the original did not already leave undefined, and whether a second run
changes nothing. Scripts that use the INC 1.x API also get `migrate`.

This file holds no corpus code: the corpus lives outside the project.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neural_coder.report import FileReport

DEFAULT_APPROACHES = (
    "qat", "pruning", "distillation", "pruning+qat", "distillation+pruning",
    "distillation+qat", "distillation+pruning+qat",
    "ptq-static", "ptq-dynamic", "ptq-auto", "bf16", "benchmark",
)  # fmt: skip
MIGRATE = "migrate"
USES_TORCH = re.compile(
    r"^\s*(import|from)\s+(torch|transformers|lightning|pytorch_lightning|accelerate)\b", re.M
)
USES_INC_1X = re.compile(
    r"neural_compressor\.experimental|from\s+neural_compressor\s+import\s+\(?[^)]*\b(Quantization|Pruning|Distillation|Benchmark|MixedPrecision|Component|common)\b|\blpot\b"
)
LOCATION = re.compile(r"^(?P<path>[^\n:]+\.py)(?::(?P<line>\d+))?(?::\d+)?: ", re.M)

# Refusal classes, first match wins; the message is lower-cased before matching.
# Ordered from the most specific wording to the most general one.
REASON_CLASSES: tuple[tuple[str, str], ...] = (
    ("parse-error", r"does not parse|syntax error|invalid syntax|not valid python"),
    ("internal-error", r"internal error"),
    ("several-loops", r"several (training|epoch) loops|more than one training loop"),
    ("model-call-not-named", r"model call is not assigned to a name"),
    ("already-compressed", r"already compressed"),
    (
        "ambiguous-model",
        r"ambiguous|more than one model|several models|which model|two models|models? (are|were) trained",
    ),
    (
        "no-model",
        r"no model|model (is )?not found|cannot find the model|could not find (a|the) model|nothing .*\bmodel\b",
    ),
    (
        "no-loop",
        r"no training loop|not inside a training loop|no (epoch|step|training) loop|no loop|outside (of )?(any|a) loop",
    ),
    ("no-backward", r"no backward|backward.*not found|no loss\b|loss .*not found"),
    ("no-optimizer-step", r"optimizer(\.| )step|no optimizer"),
    ("no-eval", r"no evaluation|eval_func|evaluation (function|loop)|no metric|does not evaluate"),
    ("no-data", r"data ?loader|calibration|no (data|batches)|dataset"),
    ("trainer", r"\btrainer\b|lightning|fabric"),
    ("teacher", r"teacher"),
    (
        "unsupported-precision",
        r"autocast|fp16|bf16|half precision|4-bit|8-bit|bitsandbytes|load_in_",
    ),
    ("distributed", r"distributed|ddp|torchrun|fsdp|deepspeed"),
    ("compiled", r"torch\.compile|compiled"),
    ("pruning-selects-nothing", r"selects no module|nothing to prune|nothing would be pruned"),
    ("qat-frozen-weights", r"quantize the frozen weights without training them"),
    ("unsupported-pattern", r"not supported|unsupported|cannot|can't|could not|does not support"),
)


@dataclass
class Outcome:
    """One (script, approach) pair."""

    script: str
    approach: str
    status: str = "refused"  # changed | unchanged | refused | error | timeout
    reason: str = ""  # refusal class
    message: str = ""
    line: int | None = None
    files: list[str] = field(default_factory=list)  # files the rewrite changed
    placed: list[str] = field(default_factory=list)  # where the engine says it put things
    warnings: list[str] = field(default_factory=list)
    compiles: bool | None = None
    no_undefined: bool | None = None
    second_run_noop: bool | None = None
    seconds: float = 0.0


def classify(message: str) -> str:
    text = message.lower()
    for name, pattern in REASON_CLASSES:
        if re.search(pattern, text):
            return name
    return "other"


# ---------------------------------------------------------------- finding the entries


def uses_torch(path: Path) -> bool:
    try:
        return bool(USES_TORCH.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def read_entries(listing: Path) -> list[tuple[Path, Path]]:
    """(script, project root) pairs from an entries file; the root is the path's first folder."""
    pairs = []
    for row in listing.read_text().splitlines():
        cells = [c for c in row.split("\t") if c.strip()]
        if not cells or row.startswith("#") or cells[-1] == "path":
            continue
        relative = Path(cells[-1].strip())
        root = listing.parent / relative.parts[0] if len(relative.parts) > 1 else listing.parent
        pairs.append((listing.parent / relative, root))
    return pairs


def find_entries(arguments: list[Path]) -> list[tuple[Path, Path]]:
    pairs: list[tuple[Path, Path]] = []
    for argument in arguments:
        if argument.is_dir() and (argument / "ENTRIES.tsv").is_file():
            pairs += read_entries(argument / "ENTRIES.tsv")
        elif argument.is_dir():
            pairs += [
                (p, argument)
                for p in sorted(argument.rglob("*.py"))
                if not any(part.startswith(".") for part in p.relative_to(argument).parts)
                and uses_torch(p)
            ]
        elif argument.suffix == ".py":
            pairs.append((argument, argument.parent))
        else:
            pairs += read_entries(argument)
    return [(s, r) for s, r in pairs if s.is_file()]


# ---------------------------------------------------------------- running one pair


class PairTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise PairTimeout


def _snapshot(root: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in root.rglob("*.py")}


def _undefined(text: str) -> set[str] | None:
    from neural_coder.verify import undefined_names

    try:
        return undefined_names(text)
    except Exception:  # noqa: BLE001 - a file that does not parse is judged by compile() alone
        return None


def _compiles(text: str) -> bool:
    try:
        compile(text, "<rewrite>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False


def _options(approach: str) -> object:
    from neural_coder.options import build_options

    return build_options(approach, None, {}, {})


def _engine(approach: str, script: Path) -> FileReport:
    """The report of one engine call on `script`, rewritten in place."""
    from neural_coder.api import Output, migrate_file, optimize_file

    if approach == MIGRATE:
        return migrate_file(script, target="runtime", output=Output(backup=False))
    return optimize_file(script, _options(approach), Output(backup=False))


def run_pair(
    script: Path, root: Path, approach: str, timeout: float, undefined: dict[Path, set[str] | None]
) -> Outcome:
    """`undefined`: each original file's undefined names, filled as files are met."""
    outcome = Outcome(script=str(script), approach=approach)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        copy_root = Path(tmp) / root.name
        shutil.copytree(root, copy_root, ignore=shutil.ignore_patterns("*.bak", "__pycache__"))
        copy = copy_root / script.relative_to(root)
        before = _snapshot(copy_root)
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            report = _engine(approach, copy)
            status, message = report.status.value, report.message
            local = str(copy_root)
            outcome.placed = [p.replace(local, str(root)) for p in report.placed]
            outcome.warnings = [w.replace(local, str(root)) for w in report.warnings]
            after = _snapshot(copy_root)
            changed = {p: t for p, t in after.items() if before.get(p) != t}
            if changed:
                outcome.status = "changed"
                outcome.message = message
                outcome.files = [str(root / p.relative_to(copy_root)) for p in changed]
                outcome.compiles = all(_compiles(t) for t in changed.values())
                outcome.no_undefined = all(
                    _new_undefined(undefined, p.relative_to(copy_root), before.get(p, ""), t)
                    == set()
                    for p, t in changed.items()
                )
                again = _engine(approach, copy)
                outcome.second_run_noop = (
                    _snapshot(copy_root) == after and again.status.value != "Transformed"
                )
            elif status == "Failed":
                outcome.message = message.replace(str(copy_root), str(root))
                outcome.reason = classify(_without_hint(outcome.message))
                located = LOCATION.search(outcome.message)
                outcome.line = (
                    int(located.group("line")) if located and located.group("line") else None
                )
            else:
                outcome.status = "unchanged"
                outcome.message = message
        except PairTimeout:
            outcome.status, outcome.reason = "timeout", "timeout"
            outcome.message = f"no answer within {timeout:g} s"
        except Exception as error:  # noqa: BLE001 - a crash of the engine is an outcome to report
            outcome.status, outcome.reason = "error", "crash"
            outcome.message = f"{type(error).__name__}: {error}".replace(str(copy_root), str(root))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    outcome.seconds = round(time.perf_counter() - start, 2)
    return outcome


def _without_hint(message: str) -> str:
    """The reason itself: the location and the hint (which names other approaches) stripped."""
    first = message.split("\n  hint:")[0]
    return LOCATION.sub("", first)


def _new_undefined(
    cache: dict[Path, set[str] | None], key: Path, original: str, rewritten: str
) -> set[str] | None:
    new = _undefined(rewritten)
    if new is None:
        return None
    if key not in cache:
        cache[key] = _undefined(original)
    return new - (cache[key] or set())


def run_script(
    script: Path, root: Path, approaches: tuple[str, ...], timeout: float, journal: Path | None
) -> list[Outcome]:
    """Every approach on one script; each outcome is appended to `journal` as it comes,
    and pairs the journal already holds are not run again."""
    text = script.read_text(encoding="utf-8", errors="replace")
    todo = list(approaches)
    if USES_INC_1X.search(text):
        todo.append(MIGRATE)
    done = {(o.script, o.approach): o for o in read_journal(journal)}
    undefined: dict[Path, set[str] | None] = {}
    outcomes = []
    for approach in todo:
        outcome = done.get((str(script), approach))
        if outcome is None:
            outcome = run_pair(script, root, approach, timeout, undefined)
            if journal is not None:
                with journal.open("a") as out:
                    out.write(json.dumps(asdict(outcome)) + "\n")
        outcomes.append(outcome)
    return outcomes


def read_journal(journal: Path | None) -> list[Outcome]:
    if journal is None or not journal.is_file():
        return []
    return [Outcome(**json.loads(line)) for line in journal.read_text().splitlines() if line]


def _progress(done: int, total: int, result: list[Outcome]) -> list[Outcome]:
    if result:
        changed = sum(o.status == "changed" for o in result)
        seconds = sum(o.seconds for o in result)
        print(
            f"[{done}/{total}] {result[0].script}: {changed}/{len(result)} changed, {seconds:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return result


def _run_script_args(
    args: tuple[Path, Path, tuple[str, ...], float, Path | None],
) -> list[Outcome]:
    return run_script(*args)


# ---------------------------------------------------------------- tables


def table(outcomes: list[Outcome]) -> str:
    approaches = list(dict.fromkeys(o.approach for o in outcomes))
    head = (
        "approach",
        "pairs",
        "changed",
        "refused",
        "error",
        "compiles",
        "no-undef",
        "2nd-noop",
        "time s",
    )
    rows = [head]
    for approach in approaches + ["ALL"]:
        mine = [o for o in outcomes if approach in ("ALL", o.approach)]
        changed = [o for o in mine if o.status == "changed"]
        rows.append((
            approach,
            str(len(mine)),
            str(len(changed)),
            str(sum(o.status == "refused" for o in mine)),
            str(sum(o.status in ("error", "timeout") for o in mine)),
            f"{sum(bool(o.compiles) for o in changed)}/{len(changed)}",
            f"{sum(bool(o.no_undefined) for o in changed)}/{len(changed)}",
            f"{sum(bool(o.second_run_noop) for o in changed)}/{len(changed)}",
            f"{sum(o.seconds for o in mine):.0f}",
        ))  # fmt: skip
    text = _grid(rows)
    reasons = sorted({o.reason for o in outcomes if o.reason})
    if reasons:
        rows = [("refused by class", *[_short(a) for a in approaches], "ALL")]
        for reason in reasons:
            counts = Counter(o.approach for o in outcomes if o.reason == reason)
            rows.append(
                (reason, *[str(counts.get(a, "")) for a in approaches], str(sum(counts.values())))
            )
        text += "\n\n" + _grid(rows)
    return text


def _short(approach: str) -> str:
    return "+".join(part[:4] for part in approach.split("+")) if "+" in approach else approach


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def details(outcomes: list[Outcome]) -> str:
    lines = []
    for o in sorted(outcomes, key=lambda o: (o.reason, o.approach, o.script)):
        if o.status in ("refused", "error", "timeout"):
            where = f"{o.script}:{o.line}" if o.line else o.script
            first = _without_hint(o.message).strip().splitlines()[0] if o.message.strip() else ""
            lines.append(f"[{o.reason}] {o.approach:24} {where}\n    {first}")
        elif o.status == "changed" and not (o.compiles and o.no_undefined and o.second_run_noop):
            lines.append(
                f"[bad-rewrite] {o.approach:24} {o.script}: compiles={o.compiles} "
                f"no_undefined={o.no_undefined} second_run_noop={o.second_run_noop}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="folders, scripts or entries files")
    parser.add_argument(
        "--approaches",
        default=",".join(DEFAULT_APPROACHES),
        help="comma-separated approaches (default: every approach the CLI offers)",
    )
    parser.add_argument("--json", type=Path, help="write every pair's outcome here")
    parser.add_argument(
        "--details", action="store_true", help="list refusals with file:line and message"
    )
    parser.add_argument("--jobs", type=int, default=1, help="scripts run in this many processes")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per pair")
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="PATHS is one --json file of an earlier run: print its tables, nothing is run",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the pairs an interrupted run wrote to JSON.partial.jsonl and run only the rest",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.from_json:  # the tables of a saved run, refusals classified again
        outcomes = [Outcome(**o) for o in json.loads(args.paths[0].read_text())]
        for o in outcomes:
            if o.status == "refused":
                o.reason = classify(_without_hint(o.message))
        print(table(outcomes))
        if args.details:
            print("\n" + details(outcomes))
        return 0
    approaches = tuple(a.strip() for a in args.approaches.split(",") if a.strip())
    for approach in approaches:  # a typo fails here, not as one refusal per script
        _options(approach)
    entries = find_entries(args.paths)
    if not entries:
        print("no scripts found", file=sys.stderr)
        return 2
    journal = args.json.with_suffix(".partial.jsonl") if args.json else None
    if journal is not None and not args.resume:
        journal.unlink(missing_ok=True)
    jobs = [(script, root, approaches, args.timeout, journal) for script, root in entries]
    outcomes: list[Outcome] = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = pool.map(_run_script_args, jobs)
            for done, result in enumerate(results, 1):
                outcomes += _progress(done, len(jobs), result)
    else:
        for done, job in enumerate(jobs, 1):
            outcomes += _progress(done, len(jobs), _run_script_args(job))
    print(f"{len(entries)} scripts, {len(outcomes)} pairs\n")
    print(table(outcomes))
    if args.details:
        print("\n" + details(outcomes))
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
