"""What `benchmark.fit` returns: per-instance and total latencies and throughput."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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
