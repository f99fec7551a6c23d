"""`benchmark.fit`: instances pinned to disjoint cores in forked processes, INC's
warm-up and totals, the printed table, and no re-execution of the calling script.
Nothing here asserts on how fast anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import benchmark, cpu
from neural_coder.runtime.benchmark import BenchmarkResult, InstanceResult, percentile
from neural_coder.runtime.config import BenchmarkConfig, ConfigValueError

PHYSICAL = cpu.cpu_info().physical_cores
two_cores = pytest.mark.skipif(
    len(PHYSICAL) < 2 or not benchmark._can_fork(),
    reason="needs 2 physical cores and fork + sched_setaffinity",
)


def loader(n_batches: int = 6, batch: int = 4) -> DataLoader:
    data = torch.randn(n_batches * batch, 8)
    return DataLoader(TensorDataset(data, torch.zeros(len(data))), batch_size=batch)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def test_percentile_interpolates_like_numpy():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([5.0], 99) == 5.0


def test_single_instance_runs_in_process_and_restores_affinity_and_threads(capsys):
    threads = torch.get_num_threads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    calls: list[torch.Tensor] = []
    model = mlp()
    model.register_forward_pre_hook(lambda m, args: calls.append(args[0]))
    result = benchmark.fit(model, BenchmarkConfig(warmup=2, iteration=5), loader())
    assert result.mode == "in-process" and len(result.instances) == 1
    inst = result.instances[0]
    assert len(calls) == 5  # `iteration` batches, warm-up included (INC)
    assert inst.warmup == 2 and len(inst.batch_seconds) == 3
    assert inst.batch_size == 4 and inst.cores == PHYSICAL
    assert inst.threads == len(PHYSICAL)
    assert inst.latency_ms > 0 and inst.percentile_ms(50) <= inst.percentile_ms(99)
    assert inst.throughput == pytest.approx(4 * 3 / sum(inst.batch_seconds))
    assert torch.get_num_threads() == threads
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity
    out = capsys.readouterr().out
    assert "Throughput sum [samples/second]" in out and "Latency average [second/sample]" in out
    assert "p99 ms" in out


def test_warmup_larger_than_the_run_drops_one_batch():
    result = benchmark.fit(mlp(), BenchmarkConfig(warmup=5, iteration=3), loader())
    assert result.instances[0].warmup == 1 and len(result.instances[0].batch_seconds) == 2


def test_whole_loader_with_a_batch_cap(monkeypatch, caplog):
    monkeypatch.setattr(benchmark, "MAX_BATCHES", 4)
    result = benchmark.fit(mlp(), BenchmarkConfig(warmup=1, iteration=-1), loader(6))
    assert len(result.instances[0].batch_seconds) == 3
    assert "using the first 4 batch(es)" in caplog.text
    result = benchmark.fit(mlp(), BenchmarkConfig(warmup=1), loader(3))
    assert len(result.instances[0].batch_seconds) == 2


def test_dict_batches_are_passed_as_keywords_without_labels():
    seen: list[set[str]] = []

    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            seen.append({"input_ids", "attention_mask"})
            return self.fc(input_ids * attention_mask)

    rows = [
        {"input_ids": torch.randn(8), "attention_mask": torch.ones(8), "labels": torch.tensor(0)}
        for _ in range(6)
    ]
    result = benchmark.fit(
        Keyword(), BenchmarkConfig(warmup=1, iteration=3), DataLoader(rows, batch_size=2)
    )
    assert len(seen) == 3 and result.instances[0].batch_size == 2


@two_cores
def test_instances_are_separate_processes_pinned_to_disjoint_cores():
    def where(model: nn.Module) -> tuple[int, list[int], int]:
        return os.getpid(), sorted(os.sched_getaffinity(0)), torch.get_num_threads()

    result = benchmark.fit(
        mlp(), BenchmarkConfig(num_of_instance=2, cores_per_instance=1), b_func=where
    )
    assert result.mode == "fork"
    pids = {r.func_value[0] for r in result.instances}
    cores = [r.func_value[1] for r in result.instances]
    assert os.getpid() not in pids and len(pids) == 2
    assert cores == [[PHYSICAL[0]], [PHYSICAL[1]]]
    assert all(r.func_value[2] == 1 for r in result.instances)
    assert [r.cores for r in result.instances] == [(PHYSICAL[0],), (PHYSICAL[1],)]


@two_cores
def test_forked_instances_time_batches_of_a_model_that_cannot_be_pickled(capsys):
    class Local(nn.Module):  # defined in a function: pickle could not send it anywhere
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)
            self.hook = lambda x: x  # and an unpicklable attribute

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.hook(self.fc(x))

    result = benchmark.fit(
        Local(),
        BenchmarkConfig(warmup=1, iteration=4, num_of_instance=2, cores_per_instance=1),
        loader(),
    )
    assert [len(r.batch_seconds) for r in result.instances] == [3, 3]
    assert result.throughput == pytest.approx(sum(r.throughput for r in result.instances))
    assert len(result.batch_seconds) == 6
    table = capsys.readouterr().out
    assert "2 instance(s) x 1 core(s) (fork)" in table
    assert table.count("\n       0  ") == 1 and table.count("\n       1  ") == 1


@two_cores
def test_a_failing_instance_is_reported():
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("shape mismatch in the user's model")

    with pytest.raises(RuntimeError, match="every benchmark instance failed.*shape mismatch"):
        benchmark.fit(Broken(), BenchmarkConfig(num_of_instance=2, cores_per_instance=1), loader())


def test_more_cores_than_the_machine_has_are_refused():
    too_many = len(PHYSICAL) + 1
    with pytest.raises(ConfigValueError, match="physical core"):
        benchmark.fit(mlp(), BenchmarkConfig(cores_per_instance=too_many), loader())
    with pytest.raises(ValueError, match="b_dataloader"):
        benchmark.fit(mlp(), BenchmarkConfig())


def test_the_calling_script_is_not_executed_again(tmp_path):
    """INC re-runs the script per instance (quirk 9.10); here its top level runs once.

    The script also uses torch's OpenMP threads before `fit`, and each forked instance
    runs two threads: without the OpenMP release before the fork, the instances would
    hang at their first parallel region (the subprocess timeout turns that into a failure).
    """
    instances = 2 if len(PHYSICAL) >= 2 and benchmark._can_fork() else 1
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import torch
            from torch import nn
            from neural_coder.runtime import benchmark
            from neural_coder.runtime.config import BenchmarkConfig

            print("SCRIPT TOP LEVEL", flush=True)
            torch.set_num_threads(2)
            a = torch.randn(512, 512)
            for _ in range(5):
                a @ a  # the parent's OpenMP pool now has worker threads

            class Net(nn.Module):  # defined in the script: nothing to unpickle it with
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(256, 256)

                def forward(self, x):
                    return self.fc(x) @ a[:256, :256]

            batches = [(torch.randn(64, 256), 0) for _ in range(4)]
            conf = BenchmarkConfig(
                warmup=1, num_of_instance={instances}, cores_per_instance=1, intra_num_of_threads=2
            )
            result = benchmark.fit(Net(), conf, batches)
            print("INSTANCES", len(result.instances), result.mode, flush=True)
            print("THREADS", [r.threads for r in result.instances], flush=True)
            """
        )
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("SCRIPT TOP LEVEL") == 1
    mode = "fork" if instances == 2 else "in-process"
    assert f"INSTANCES {instances} {mode}" in run.stdout
    assert f"THREADS {[2] * instances}" in run.stdout


def test_openmp_threads_can_be_released_before_a_fork():
    torch.ones(1000, 1000) @ torch.ones(1000, 1000)
    assert benchmark._release_openmp_threads()
    # the calling process goes on computing with its threads
    assert (torch.ones(300, 300) @ torch.ones(300, 300))[0, 0] == 300


def test_result_totals_follow_inc():
    a = InstanceResult(0, (0,), 1, 10, 0, batch_seconds=[0.01, 0.03])
    b = InstanceResult(1, (1,), 1, 10, 0, batch_seconds=[0.02, 0.02])
    result = BenchmarkResult([a, b], "fork")
    assert a.latency_ms == pytest.approx(20.0) and a.throughput == pytest.approx(500.0)
    assert result.latency_ms == pytest.approx(20.0)
    assert result.latency_per_sample_ms == pytest.approx(2.0)
    assert result.throughput == pytest.approx(1000.0)
    assert result.to_dict()["instances"][1]["p50_ms"] == pytest.approx(20.0)
    assert "Throughput sum [samples/second]: 1000.000" in result.table()


CPUINFO = """\
processor\t: 0
model name\t: Fake Xeon
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu avx2 avx512f avx512_vnni amx_bf16 amx_tile

processor\t: 1
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu avx2 avx512f avx512_vnni amx_bf16 amx_tile

processor\t: 2
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu avx2 avx512f avx512_vnni amx_bf16 amx_tile

processor\t: 3
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu avx2 avx512f avx512_vnni amx_bf16 amx_tile
"""


def test_cpuinfo_gives_one_logical_cpu_per_physical_core_and_the_flags(tmp_path):
    blocks = cpu.parse_cpuinfo(CPUINFO)
    assert [b["processor"] for b in blocks] == ["0", "1", "2", "3"]
    # 2 and 3 are hyper-thread siblings of 0 and 1
    assert cpu.physical_cores(blocks, [0, 1, 2, 3]) == (0, 1)
    # only the CPUs this process may use count: CPU 1 is not allowed, its sibling 3 is
    assert cpu.physical_cores(blocks, [0, 2, 3]) == (0, 3)
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = cpu.cpu_info(str(path))
    assert info.model_name == "Fake Xeon"
    assert info.native_bf16 and info.amx and info.vnni
    assert "amx_bf16" in info.describe()
    avx2_only = tmp_path / "avx2"
    avx2_only.write_text(CPUINFO.replace(" avx512f avx512_vnni amx_bf16 amx_tile", ""))
    plain = cpu.cpu_info(str(avx2_only))
    assert not plain.native_bf16 and not plain.vnni
    missing = cpu.cpu_info(str(tmp_path / "nope"))
    assert missing.flags == frozenset() and missing.physical_cores
