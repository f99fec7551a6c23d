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

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from . import cpu
from .batches import batch_size_of, forward_inputs, model_device, to_device
from .benchmark_instances import (
    _can_fork,
    _Job,
    _pinned,
    _release_openmp_threads,
    _run,
    _run_forked,
)
from .benchmark_results import BenchmarkResult, InstanceResult
from .benchmark_results import percentile as percentile  # re-exported: benchmark.percentile
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
