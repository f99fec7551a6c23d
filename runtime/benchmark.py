"""Benchmarking: `fit(model, BenchmarkConfig(...), b_dataloader)` (INC 2.x, spec 6.2).

Runs `num_of_instance` instances of the model side by side, each pinned to its
own `cores_per_instance` physical cores (`os.sched_setaffinity`) with
`torch.set_num_threads(cores)` (or `intra_num_of_threads`), measures the time
of every batch, and returns a `BenchmarkResult`: per instance and in total,
latency per batch (mean, p50, p90, p99), latency per sample and throughput. A
table is printed.

Semantics kept from INC: `iteration` batches are run per instance (-1: the whole
loader) and the first `warmup` of them are not counted (when no more than
`warmup` batches were run, 1 warm-up batch is dropped, or none for a single
batch); latency per sample is the mean batch time over the batch size;
the total throughput is the sum of the instances'; `cores_per_instance=None`
shares the physical cores evenly; asking for more cores than there are is an
error.

The fix for quirk 9.10: INC re-executes the user's *script* once per instance
(`sys.executable + sys.argv` with `NC_ENV_CONF=True`), so everything before the
`fit` call (training included) runs again in every instance, and the launching
process gets None. Here the instances are child processes **forked** from the
calling process at the `fit` call: each starts with the model and the batches
already in memory, nothing of the script runs again, no pickling is needed (a
model class defined in the script works, and so do FX int8 models, which torch
cannot unpickle), and the results come back to the caller over a pipe.

Forking a process whose OpenMP runtime already has worker threads leaves the
child's runtime waiting for threads that do not exist: the child hangs at its
first parallel region with more than one thread (GNU libgomp, which torch's
wheels use). So before forking, the OpenMP runtimes loaded in the process are
told to release their threads (`omp_pause_resource_all(omp_pause_hard)`, OpenMP
5.0); the calling process re-creates them on its next parallel region. Where
that is not possible and instances need more than one thread, the instances run
one after the other in the calling process, each pinned to its cores, with a
warning (their throughputs are then summed from separate runs).

With one instance no process is started: the calling process (all its threads)
is pinned for the run, and its affinity and thread count are restored. Where
`fork` or `sched_setaffinity` do not exist (not Linux), the instances run one
after the other in the calling process, unpinned, with a warning.

The batches are read from `b_dataloader` once, before any instance starts, so
every instance runs the same data and loading is not timed; at most
`MAX_BATCHES` batches or `MAX_BATCH_BYTES` of tensors are kept (a log line says
when `iteration=-1` is cut short).

Other differences: the result comes back to the caller (INC returns None in the
launching process); environment variables (`NUM_OF_INSTANCE`, ...) are not
exported; `b_func(model)` is called once per pinned instance and its wall time
and return value are reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import cpu
from .batches import batch_size_of, call_model, forward_inputs, model_device, to_device
from .config import BenchmarkConfig, ConfigValueError
from .model import Model
from .progress import Progress
from .summary import record, runtime_logger, state_dict_size

__all__ = ["BenchmarkResult", "InstanceResult", "MAX_BATCHES", "MAX_BATCH_BYTES", "fit"]

#: see `_at_least`
MIN_BATCHES_ENV = "NEURAL_CODER_BENCHMARK_MIN_BATCHES"

log = logging.getLogger(__name__)

#: at most this many batches are kept for the instances
MAX_BATCHES = 1000
#: and at most this many bytes of tensors
MAX_BATCH_BYTES = 1 << 30


# -- results ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class InstanceResult:
    """One instance: the cores it ran on and the time of each counted batch."""

    instance: int
    cores: tuple[int, ...]
    threads: int
    batch_size: int
    warmup: int
    batch_seconds: list[float] = field(default_factory=list)
    #: `b_func`: its wall time and what it returned (repr when it cannot travel)
    func_seconds: float | None = None
    func_value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_ms(self) -> float:
        """Mean time per batch, ms."""
        return (
            1e3 * sum(self.batch_seconds) / len(self.batch_seconds)
            if self.batch_seconds
            else math.nan
        )

    def percentile_ms(self, q: float) -> float:
        return 1e3 * percentile(self.batch_seconds, q)

    @property
    def latency_per_sample_ms(self) -> float:
        return self.latency_ms / self.batch_size

    @property
    def throughput(self) -> float:
        """Samples per second."""
        total = sum(self.batch_seconds)
        return self.batch_size * len(self.batch_seconds) / total if total > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "cores": list(self.cores),
            "threads": self.threads,
            "batch_size": self.batch_size,
            "warmup": self.warmup,
            "batches": len(self.batch_seconds),
            "latency_ms": self.latency_ms,
            "p50_ms": self.percentile_ms(50),
            "p90_ms": self.percentile_ms(90),
            "p99_ms": self.percentile_ms(99),
            "latency_per_sample_ms": self.latency_per_sample_ms,
            "throughput": self.throughput,
            "func_seconds": self.func_seconds,
            "error": self.error,
        }


@dataclass
class BenchmarkResult:
    """All instances, and the totals INC prints."""

    instances: list[InstanceResult]
    mode: str  # "in-process" | "fork" | "sequential"

    @property
    def ok(self) -> list[InstanceResult]:
        return [r for r in self.instances if r.ok]

    @property
    def batch_seconds(self) -> list[float]:
        return [t for r in self.ok for t in r.batch_seconds]

    @property
    def latency_ms(self) -> float:
        """Mean over instances of their mean batch time, ms."""
        values = [r.latency_ms for r in self.ok if r.batch_seconds]
        return sum(values) / len(values) if values else math.nan

    def percentile_ms(self, q: float) -> float:
        """Percentile of the batch times of all instances together, ms."""
        return 1e3 * percentile(self.batch_seconds, q)

    @property
    def latency_per_sample_ms(self) -> float:
        values = [r.latency_per_sample_ms for r in self.ok if r.batch_seconds]
        return sum(values) / len(values) if values else math.nan

    @property
    def throughput(self) -> float:
        """Sum over instances, samples per second (INC's "Throughput sum")."""
        values = [r.throughput for r in self.ok if r.batch_seconds]
        return sum(values) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "instances": [r.to_dict() for r in self.instances],
            "latency_ms": self.latency_ms,
            "p50_ms": self.percentile_ms(50),
            "p90_ms": self.percentile_ms(90),
            "p99_ms": self.percentile_ms(99),
            "latency_per_sample_ms": self.latency_per_sample_ms,
            "throughput": self.throughput,
        }

    def table(self) -> str:
        """The printed report."""
        timed = [r for r in self.ok if r.batch_seconds]
        first = self.instances[0]
        what = (
            f"batch size {first.batch_size}, {len(first.batch_seconds)} batch(es) counted after "
            f"{first.warmup} warm-up"
            if timed or first.func_seconds is None
            else "b_func"
        )
        lines = [
            f"benchmark: {len(self.instances)} instance(s) x {len(first.cores) or '?'} core(s) "
            f"({self.mode}), {what}"
        ]
        header = (
            f"{'instance':>8}  {'cores':<12} {'mean ms':>10} {'p50 ms':>10} {'p90 ms':>10} "
            f"{'p99 ms':>10} {'samples/s':>12}"
        )
        lines += [header, "-" * len(header)]
        for r in self.instances:
            cores = ",".join(map(str, r.cores)) or "-"
            if r.error is not None:
                lines.append(f"{r.instance:>8}  {cores:<12} failed: {r.error}")
            elif r.batch_seconds:
                lines.append(
                    f"{r.instance:>8}  {cores:<12} {r.latency_ms:>10.3f} {r.percentile_ms(50):>10.3f} "
                    f"{r.percentile_ms(90):>10.3f} {r.percentile_ms(99):>10.3f} {r.throughput:>12.1f}"
                )
            else:
                lines.append(f"{r.instance:>8}  {cores:<12} b_func: {r.func_seconds:.3f} s")
        if timed:
            lines.append("-" * len(header))
            lines.append(
                f"{'all':>8}  {'':<12} {self.latency_ms:>10.3f} {self.percentile_ms(50):>10.3f} "
                f"{self.percentile_ms(90):>10.3f} {self.percentile_ms(99):>10.3f} "
                f"{self.throughput:>12.1f}"
            )
            lines.append(f"Latency average [second/sample]: {self.latency_per_sample_ms / 1e3:.6g}")
            lines.append(f"Throughput sum [samples/second]: {self.throughput:.3f}")
        return "\n".join(lines)


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


# -- set-up ---------------------------------------------------------------------------------
def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _read_batches(
    loader: Any, model: nn.Module, iteration: int, device: torch.device | None
) -> list[Any]:
    wanted = iteration if iteration > 0 else MAX_BATCHES
    batches: list[Any] = []
    size = 0
    cut = False
    for batch in loader:
        if len(batches) >= wanted:
            cut = iteration <= 0
            break
        inputs = to_device(forward_inputs(batch, model), device)
        batches.append(inputs)
        size += _tensor_bytes(inputs)
        if size >= MAX_BATCH_BYTES:
            cut = True
            break
    if cut:
        log.warning(
            "benchmark: using the first %d batch(es) of b_dataloader (%.0f MiB in memory, limits "
            "%d batches / %d MiB)",
            len(batches),
            size / 2**20,
            MAX_BATCHES,
            MAX_BATCH_BYTES // 2**20,
        )
    elif iteration > 0 and len(batches) < iteration:
        log.info(
            "benchmark: b_dataloader has only %d batch(es) (iteration=%d)", len(batches), iteration
        )
    return batches


def _at_least(batches: list[Any], warmup: int) -> list[Any]:
    """With `$NEURAL_CODER_BENCHMARK_MIN_BATCHES` set (by `neural-coder auto`), the
    batches read are cycled until that many are timed after the warm-up: a short
    evaluation set otherwise leaves one or two timed batches, too few to compare
    candidates on a busy machine. Unset, INC's semantics hold (no repetition)."""
    wanted = int(os.environ.get(MIN_BATCHES_ENV, "0") or 0)
    if wanted <= 0 or len(batches) >= warmup + wanted:
        return batches
    total = warmup + wanted
    return [batches[i % len(batches)] for i in range(total)]


def _core_plan(conf: Any) -> list[tuple[int, ...]]:
    """Disjoint physical cores for each instance."""
    instances = int(getattr(conf, "num_of_instance", 1) or 1)
    physical = list(cpu.cpu_info().physical_cores) or list(cpu.allowed_cpus())
    per = getattr(conf, "cores_per_instance", None)
    if per is None:
        per = max(1, len(physical) // instances)
    per = int(per)
    if per * instances > len(physical):
        raise ConfigValueError(
            type(conf).__name__,
            "cores_per_instance",
            per,
            f"at most {len(physical) // instances or 1} with num_of_instance={instances}: "
            f"{instances} x {per} cores are more than the {len(physical)} physical core(s) this "
            f"process may use ({','.join(map(str, physical))})",
        )
    return [tuple(physical[i * per : (i + 1) * per]) for i in range(instances)]


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


def fit(
    model: nn.Module,
    conf: Any = None,
    b_dataloader: Any = None,
    b_func: Callable[[nn.Module], Any] | None = None,
    **kwargs: Any,
) -> BenchmarkResult:
    """Benchmark `model` (INC 2.x `neural_compressor.benchmark.fit`); see the module docstring.

    Prints the table and returns the `BenchmarkResult`.
    """
    if conf is None:
        conf = kwargs.pop("config", None) or BenchmarkConfig()
    if kwargs:
        log.warning("benchmark.fit: ignoring unsupported arguments %s", sorted(kwargs))
    runtime_logger()
    if isinstance(model, Model):
        model = model.model
    if not callable(model):
        raise TypeError(f"benchmark.fit runs a torch.nn.Module, got {type(model).__name__}")
    if b_func is None and b_dataloader is None:
        raise ValueError("benchmark.fit needs b_dataloader= (batches to time) or b_func=")
    if b_dataloader is not None and not hasattr(b_dataloader, "__iter__"):
        raise TypeError(f"b_dataloader must be iterable, got {type(b_dataloader).__name__}")
    if getattr(conf, "backend", "default") != "default":
        raise ConfigValueError(type(conf).__name__, "backend", conf.backend, "'default'")

    device = model_device(model) if isinstance(model, nn.Module) else None
    on_gpu = getattr(conf, "device", "cpu") == "gpu" or (
        device is not None and device.type != "cpu"
    )
    plan = _core_plan(conf)
    if on_gpu and len(plan) > 1:
        log.info(
            "benchmark: the model runs on a GPU: one instance, in this process (INC does the same)"
        )
        plan = plan[:1]
    batches: list[Any] = []
    batch_size = 1
    if b_func is None:
        batches = _read_batches(b_dataloader, model, int(getattr(conf, "iteration", -1)), device)
        if not batches:
            raise ValueError("b_dataloader yielded no batch")
        batches = _at_least(batches, int(getattr(conf, "warmup", 5)))
        batch_size = batch_size_of(b_dataloader, batches[0])
    intra = getattr(conf, "intra_num_of_threads", None)
    job = _Job(
        model=model,
        batches=batches,
        batch_size=batch_size,
        warmup=int(getattr(conf, "warmup", 5)),
        b_func=b_func,
        threads=int(intra) if intra else max(1, len(plan[0])),
        inter_threads=getattr(conf, "inter_num_of_threads", None),
    )
    steps = len(batches) if b_func is None else 1
    if len(plan) == 1 or on_gpu:
        mode = "in-process"
        with _pinned(() if on_gpu else plan[0], job.threads, job.inter_threads):
            with Progress(steps, "benchmark", unit="batch") as bar:
                results = [_run(job, 0, () if on_gpu else plan[0], bar.update)]
    elif _can_fork() and (job.threads == 1 or _release_openmp_threads()):
        mode = "fork"
        results = _run_forked(job, plan, steps)
    else:
        mode = "sequential"
        pin = _can_fork()
        log.warning(
            "benchmark: %s; running the %d instances one after the other in this process%s",
            "the OpenMP runtime cannot release its threads before a fork"
            if pin
            else "this platform cannot fork processes pinned to cores",
            len(plan),
            ", each pinned to its cores" if pin else "",
        )
        results = []
        with Progress(steps * len(plan), "benchmark", unit="batch") as bar:
            for index, cores in enumerate(plan):
                with _pinned(cores if pin else (), job.threads, job.inter_threads):
                    results.append(_run(job, index, cores, bar.update))
    result = BenchmarkResult(results, mode)
    failed = [r for r in results if not r.ok]
    for r in failed:
        log.error("benchmark instance %d failed: %s", r.instance, r.error)
    if len(failed) == len(results):
        raise RuntimeError(f"every benchmark instance failed; first error: {failed[0].error}")
    print(result.table(), flush=True)
    record(
        "benchmark",
        {
            **result.to_dict(),
            "batch_size": batch_size,
            "size_bytes": state_dict_size(model) if isinstance(model, nn.Module) else None,
        },
    )
    return result
