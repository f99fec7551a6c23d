"""Many files over the machine's cores: `optimize` and `migrate` of a folder.

Files are handed to worker processes in groups; the files of one group run one after
the other in one worker, in the order given, as they would in one process: scripts
whose projects share a module (two scripts importing `engine.py`, which either may
edit) form one group. The reports come back in the order of the input. One file, or
one core, stays in this process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from neural_coder.report import FileReport

Work = Callable[[Path], FileReport]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_files(
    work: Work,
    files: Sequence[Path],
    jobs: int | None = None,
    shared: Callable[[Path], set[Path]] | None = None,
) -> list[FileReport]:
    """`work(file)` for each file, the reports in the order of `files`. `jobs` processes
    (default: one per core); `shared(file)` names the files a run on `file` may read or
    write besides it (files whose sets meet run in one group, in order)."""
    workers = min(jobs or available_cores(), len(files))
    if workers <= 1:
        return [work(path) for path in files]
    groups = _groups(files, shared)
    if len(groups) == 1:
        return [work(path) for path in files]
    import multiprocessing  # (only here: a one-file run never pays for the imports)
    from concurrent.futures import ProcessPoolExecutor

    # fork is cheap (the engine is already imported), but only safe without other threads
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(method)
    reports: list[FileReport | None] = [None] * len(files)
    with ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=context) as pool:
        batches = [[files[i] for i in group] for group in groups]
        for group, done in zip(groups, pool.map(_run_group, [work] * len(groups), batches)):
            for index, report in zip(group, done):
                reports[index] = report
    return [r for r in reports if r is not None]


def _run_group(work: Work, paths: list[Path]) -> list[FileReport]:
    return [work(path) for path in paths]


def _groups(files: Sequence[Path], shared: Callable[[Path], set[Path]] | None) -> list[list[int]]:
    """Indices of `files`, grouped so that runs touching a common file share a group; each
    group in input order, groups by their first file."""
    owner: dict[Path, int] = {}  # a file -> the group (by its first index) that touches it
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index, path in enumerate(files):
        touched = {path.resolve()} | (shared(path) if shared is not None else set())
        for file in touched:
            if file in owner:
                a, b = root(owner[file]), root(index)
                parent[max(a, b)] = min(a, b)
            else:
                owner[file] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(files)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())
