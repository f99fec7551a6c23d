"""Running `benchmark.fit`'s instances: the timed batches, pinning to cores, releasing the
OpenMP threads before a fork, and the forked children that send their results back."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .batches import call_model, model_device
from .benchmark_results import InstanceResult
from .progress import Progress


# -- the measured run (in an instance) ---------------------------------------------------------
@dataclass
class _Job:
    model: nn.Module
    batches: list[Any]
    batch_size: int
    warmup: int
    b_func: Callable[[nn.Module], Any] | None
    threads: int
    inter_threads: int | None


def _counted_warmup(runs: int, warmup: int) -> int:
    """INC: when no more than `warmup` batches ran, drop 1 (none for a single batch)."""
    if runs > warmup:
        return warmup
    return 1 if runs > 1 else 0


def _synchronize(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(job: _Job, index: int, cores: tuple[int, ...], tick: Callable[[], None]) -> InstanceResult:
    """Run the job in the current process (already pinned); `tick()` after each batch."""
    result = InstanceResult(index, cores, torch.get_num_threads(), job.batch_size, 0)
    model = job.model
    if job.b_func is not None:
        start = time.perf_counter()
        value = job.b_func(model)
        result.func_seconds = time.perf_counter() - start
        result.func_value = value
        tick()
        return result
    device = model_device(model)
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with torch.no_grad():
            for inputs in job.batches:
                _synchronize(device)
                start = time.perf_counter()
                call_model(model, inputs)
                _synchronize(device)
                times.append(time.perf_counter() - start)
                tick()
    finally:
        model.train(was_training)
    result.warmup = _counted_warmup(len(times), job.warmup)
    result.batch_seconds = times[result.warmup :]
    return result


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


@contextlib.contextmanager
def _pinned(cores: Sequence[int], threads: int, inter_threads: int | None) -> Iterator[None]:
    """Pin every thread of the current process to `cores` (threads created later inherit
    it) and set torch's threads; restore both afterwards."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    setaffinity = getattr(os, "sched_setaffinity", None)
    saved: dict[int, set[int]] = {}
    saved_threads = torch.get_num_threads()
    try:
        if setaffinity is not None and getaffinity is not None and cores:
            for tid in _thread_ids():
                with contextlib.suppress(OSError):  # a thread that just ended
                    saved[tid] = getaffinity(tid)
                    setaffinity(tid, set(cores))
        torch.set_num_threads(threads)
        if inter_threads is not None:
            with contextlib.suppress(RuntimeError):  # only settable before inter-op work
                torch.set_num_interop_threads(inter_threads)
        yield
    finally:
        torch.set_num_threads(saved_threads)
        if setaffinity is not None:
            for tid, affinity in saved.items():
                with contextlib.suppress(OSError):
                    setaffinity(tid, affinity)


_OPENMP_LIB = re.compile(r"/lib(gomp|iomp5|omp)[^/]*\.so[^/]*$")
_OMP_PAUSE_HARD = 2


def _release_openmp_threads() -> bool:
    """Ask every OpenMP runtime loaded in this process to end its worker threads, so that
    a forked child can start its own; False when one of them cannot."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if _OPENMP_LIB.search(line.strip())}
    except OSError:
        return False
    for path in sorted(paths):
        try:
            pause = ctypes.CDLL(path).omp_pause_resource_all
        except (OSError, AttributeError):
            return False
        pause.restype = ctypes.c_int
        pause.argtypes = [ctypes.c_int]
        if pause(_OMP_PAUSE_HARD) != 0:
            return False
    return True


def _child(
    job: _Job,
    index: int,
    cores: tuple[int, ...],
    counter: Any,
    barrier: Any,
    conn: Any,
) -> None:
    """The body of a forked instance: pin, wait for the others, run, send the result."""
    try:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cores))
        torch.set_num_threads(job.threads)
        if job.inter_threads is not None:
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(job.inter_threads)
        with contextlib.suppress(Exception):
            barrier.wait(timeout=60)  # the instances start their batches together

        def tick() -> None:
            with counter.get_lock():
                counter.value += 1

        result = _run(job, index, cores, tick)
        try:
            conn.send(result)
        except Exception:  # an unpicklable b_func value: send its repr
            result.func_value = repr(result.func_value)
            conn.send(result)
    except BaseException as exc:  # report every failure to the parent
        detail = traceback.format_exc(limit=4)
        conn.send(
            InstanceResult(
                index, cores, job.threads, job.batch_size, 0, error=f"{type(exc).__name__}: {exc}"
            )
        )
        sys.stderr.write(detail)
    finally:
        conn.close()


def _can_fork() -> bool:
    return (
        hasattr(os, "sched_setaffinity")
        and "fork" in multiprocessing.get_all_start_methods()
        and sys.platform.startswith("linux")
    )


def _run_forked(job: _Job, plan: list[tuple[int, ...]], total_batches: int) -> list[InstanceResult]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(plan))
    counters = [ctx.Value("i", 0) for _ in plan]
    pipes = [ctx.Pipe(duplex=False) for _ in plan]
    procs = []
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the children only
        # run torch ops on the model they inherit and exit
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        for index, cores in enumerate(plan):
            proc = ctx.Process(
                target=_child,
                args=(job, index, cores, counters[index], barrier, pipes[index][1]),
                name=f"neural-coder-benchmark-{index}",
                daemon=True,
            )
            proc.start()
            procs.append(proc)
    for _, send in pipes:
        send.close()
    results: list[InstanceResult | None] = [None] * len(plan)
    with Progress(total_batches * len(plan), "benchmark", unit="batch") as bar:
        pending = set(range(len(plan)))
        while pending:
            for index in list(pending):
                recv = pipes[index][0]
                if recv.poll(0.05):
                    try:
                        results[index] = recv.recv()
                    except EOFError:
                        pass
                    pending.discard(index)
                elif not procs[index].is_alive() and not recv.poll(0):
                    pending.discard(index)
            bar.set_count(sum(c.value for c in counters))
    for index, proc in enumerate(procs):
        proc.join(timeout=10)
        if results[index] is None:
            results[index] = InstanceResult(
                index,
                plan[index],
                job.threads,
                job.batch_size,
                0,
                error=f"the instance process exited with code {proc.exitcode} without a result",
            )
    return [r for r in results if r is not None]
