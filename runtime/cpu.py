"""CPU features and core layout, read from Linux's /proc/cpuinfo and sysfs.

Used by `mix_precision` (does this CPU compute bf16 natively?), by the
quantization backend's choices (VNNI) and by `benchmark` (which cores to pin
instances to). Only the standard library is used; on a platform without
/proc/cpuinfo every flag is False and the core list comes from
`os.sched_getaffinity` or `os.cpu_count`.

Physical cores: one logical CPU per (physical package, core id) pair, the lowest
numbered one, restricted to the CPUs this process may run on. INC pins a
benchmark instance to physical cores through `numactl --physcpubind`; here the
list feeds `os.sched_setaffinity`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "CPUInfo",
    "allowed_cpus",
    "cpu_info",
    "parse_cpuinfo",
    "physical_cores",
]

#: flags that mean "bf16 arithmetic in hardware" (dot products or tiles)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: flags that mean "int8 dot products in hardware" (no int16 overflow: reduce_range not needed)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CPUInfo:
    """What this process's CPU can do and where it may run."""

    model_name: str
    flags: frozenset[str]
    #: logical CPUs this process may run on (its affinity mask), sorted
    logical_cpus: tuple[int, ...]
    #: one logical CPU per physical core, within `logical_cpus`, sorted
    physical_cores: tuple[int, ...]

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def native_bf16(self) -> bool:
        """bf16 instructions (AVX512-BF16 or AMX-BF16): INC's condition for bf16 on a CPU.

        Having them is necessary, not sufficient, for bf16 to be faster than fp32:
        `mix_precision` still measures.
        """
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags or "amx_int8" in self.flags

    @property
    def vnni(self) -> bool:
        return any(flag in self.flags for flag in VNNI_FLAGS)

    def describe(self) -> str:
        """One line for logs: model, cores, the flags that matter here."""
        shown = [
            f
            for f in ("avx2", "avx512f", *VNNI_FLAGS, "avx512_bf16", "amx_bf16", "amx_tile")
            if f in self.flags
        ]
        return (
            f"{self.model_name or 'unknown CPU'}; {len(self.physical_cores)} physical / "
            f"{len(self.logical_cpus)} logical CPUs available; "
            f"flags: {', '.join(shown) or 'none of avx2/avx512/vnni/bf16/amx'}"
        )


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block (keys as written, values stripped)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return [b for b in blocks if "processor" in b]


def allowed_cpus() -> tuple[int, ...]:
    """The logical CPUs this process may run on."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return tuple(sorted(getaffinity(0)))
        except OSError:
            pass
    return tuple(range(os.cpu_count() or 1))


def _sysfs_topology(cpu: int) -> tuple[str, str] | None:
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
    try:
        with open(f"{base}/physical_package_id", encoding="ascii") as f:
            package = f.read().strip()
        with open(f"{base}/core_id", encoding="ascii") as f:
            core = f.read().strip()
    except OSError:
        return None
    return package, core


def physical_cores(
    processors: Iterable[Mapping[str, str]], allowed: Iterable[int]
) -> tuple[int, ...]:
    """One logical CPU per physical core (the lowest numbered sibling), among `allowed`.

    Topology comes from the `physical id` / `core id` fields of /proc/cpuinfo, else
    from sysfs; a CPU with no known topology counts as its own core.
    """
    allowed_set = set(allowed)
    topology: dict[int, tuple[str, str]] = {}
    for block in processors:
        try:
            cpu = int(block["processor"])
        except (KeyError, ValueError):
            continue
        if "physical id" in block and "core id" in block:
            topology[cpu] = (block["physical id"], block["core id"])
    chosen: dict[tuple[str, str], int] = {}
    for cpu in sorted(allowed_set):
        key = topology.get(cpu) or _sysfs_topology(cpu) or ("cpu", str(cpu))
        if key not in chosen:
            chosen[key] = cpu
    return tuple(sorted(chosen.values()))


@functools.cache
def cpu_info(path: str = "/proc/cpuinfo") -> CPUInfo:
    """This machine's `CPUInfo` (read once per process and path)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            processors = parse_cpuinfo(f.read())
    except OSError:
        processors = []
    flags: set[str] = set()
    model = ""
    for block in processors:
        # x86 says "flags", arm64 says "Features"
        flags.update((block.get("flags") or block.get("Features") or "").split())
        model = model or block.get("model name", "")
    logical = allowed_cpus()
    return CPUInfo(
        model_name=model,
        flags=frozenset(flags),
        logical_cpus=logical,
        physical_cores=physical_cores(processors, logical),
    )
