"""The runtime under torch.distributed: 2 real processes, gloo on CPU, DDP.

Both ranks run `dist_worker.py` once (every scenario in one process group, so
torch is imported twice, not once per test); each rank trains on its own data
with the hooks written by hand, and the tests compare what the ranks saved:
mask digests, sparsity, QAT scales / zero points and int8 weights, final
weights, and which files each rank wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from neural_coder.runtime import distributed

WORKER = Path(__file__).with_name("dist_worker.py")
WORLD = 2
STEPS = 30  # dist_worker.STEPS
TARGET = 0.5  # dist_worker.TARGET

PRUNING = [
    "prune_snip_global_mlp",
    "prune_magnitude_local_cnn",
    "prune_gradient_local_mlp",
    "prune_snip_global_caps_cnn",
    "prune_progressive_nm_mlp",
    "prune_pattern_lock_mlp",
    "prune_qat_cnn",
    "ddp_wrapped_pruning_distillation",
]
QAT = {"qat_mlp": "fx", "qat_cnn": "fx", "prune_qat_cnn": "fx", "qat_eager_mlp": "eager"}
TRAINED = list(
    dict.fromkeys([*PRUNING, *QAT, "distill_kd_mlp", "qat_unsynced_control", "prune_without_ddp"])
)

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "NEURAL_CODER_SUMMARY"}
    env["OMP_NUM_THREADS"] = "1"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), str(WORLD), str(out / "init"), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        for r in range(WORLD)
    ]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("the distributed workers did not finish within 240 s")
    for r, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f"rank {r} exited with {proc.returncode}:\n{log[-4000:]}"
    results = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    return out, results


def scenario(runs: tuple[Path, list[dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    """Each rank's results for one scenario (a scenario that raised fails with its traceback)."""
    per_rank = [results[name] for results in runs[1]]
    for r, result in enumerate(per_rank):
        assert "traceback" not in result, f"rank {r}, {name}:\n{result['traceback']}"
    return per_rank


@pytest.mark.parametrize("name", TRAINED)
def test_each_rank_trained_on_its_own_data(runs, name):
    r0, r1 = scenario(runs, name)
    assert r0["first_loss"] != r1["first_loss"]


@pytest.mark.parametrize("name", [n for n in TRAINED if n != "prune_without_ddp"])
def test_final_weights_are_identical_across_ranks(runs, name):
    r0, r1 = scenario(runs, name)
    assert r0["params_digest"] == r1["params_digest"]


@pytest.mark.parametrize("name", PRUNING)
def test_masks_identical_and_sparsity_reached(runs, name):
    r0, r1 = scenario(runs, name)
    assert r0["mask_digests"] == r1["mask_digests"]
    assert r0["zero_digests"] == r1["zero_digests"]
    assert r0["per_layer"] == r1["per_layer"]
    for r in (r0, r1):
        assert abs(r["sparsity"] - TARGET) <= 0.02, r["per_layer"]
        assert r["reached"]
        # every mask change was checked across ranks, and none needed rank 0's masks
        assert r["dist_mask_checks"] >= 1
        assert r["dist_mask_repairs"] == 0


def test_masks_that_differ_across_ranks_are_replaced_by_rank_0s(runs):
    """Without DDP each rank prunes its own differently initialised model: the check sees
    different masks at every pruning step, and rank 0's are used everywhere."""
    r0, r1 = scenario(runs, "prune_without_ddp")
    assert r0["params_digest"] != r1["params_digest"]
    assert r0["dist_mask_repairs"] == r0["dist_mask_checks"] >= 1
    assert r0["mask_digests"] == r1["mask_digests"]
    assert r0["zero_digests"] == r1["zero_digests"]
    assert abs(r0["sparsity"] - TARGET) <= 0.02


@pytest.mark.parametrize("name", QAT)
def test_qat_scales_zero_points_and_int8_model_identical(runs, name):
    r0, r1 = scenario(runs, name)
    assert r0["qat_path"] == r1["qat_path"] == QAT[name]
    assert r0["qparams"], "no fake-quant found in the prepared model"
    assert r0["qparams"] == r1["qparams"]
    assert r0["int8_digest"] == r1["int8_digest"]
    assert r0["quantized_modules"] > 0
    # after each of the STEPS optimizer steps, and once more before conversion
    assert r0["observer_syncs"] == r1["observer_syncs"] == STEPS + 1


def test_without_the_observer_sync_the_ranks_scales_drift_apart(runs):
    """The control for the test above: same run with the sync switched off."""
    r0, r1 = scenario(runs, "qat_unsynced_control")
    assert r0["params_digest"] == r1["params_digest"]  # DDP keeps the weights in step
    assert r0["qparams"] != r1["qparams"]
    assert r0["int8_digest"] != r1["int8_digest"]


def test_distillation_runs_a_teacher_per_rank(runs):
    r0, r1 = scenario(runs, "distill_kd_mlp")
    assert r0["distillation_steps"] == r1["distillation_steps"] == STEPS
    assert r0["teacher_digest"] == r1["teacher_digest"]


def test_a_ddp_wrapped_model_is_pruned_and_distilled_through_its_module(runs):
    r0, r1 = scenario(runs, "ddp_wrapped_pruning_distillation")
    assert set(r0["per_layer"]) == {"fc1", "fc2"}  # no `module.` prefix
    assert r0["distillation_steps"] == r1["distillation_steps"] == STEPS


def test_qat_of_a_ddp_wrapped_model_is_refused_with_the_order_to_use(runs):
    for result in scenario(runs, "qat_of_ddp_refused"):
        assert result["error"] is not None
        assert "prepare_compression(model, confs)" in result["error"]
        assert "DistributedDataParallel(cm.model)" in result["error"]


@pytest.mark.parametrize("name", TRAINED)
def test_only_rank_0_writes_the_summary(runs, name):
    r0, r1 = scenario(runs, name)
    out = runs[0]
    assert r0["summary_written"] and (out / f"{name}.rank0.json").is_file()
    assert not r1["summary_written"] and not (out / f"{name}.rank1.json").exists()


def test_only_rank_0_saves(runs):
    r0, r1 = scenario(runs, "save")
    assert r0["save_return"] == r1["save_return"] == "best_model.pt"
    assert r0["save_wrote"] and not r1["save_wrote"]
    # a float model's own save_pretrained (no is_main_process parameter): not run on rank 1
    assert r0["save_pretrained_return"] == "weights.pt" and r0["save_pretrained_wrote"]
    assert r1["save_pretrained_return"] is None and not r1["save_pretrained_wrote"]
    # an int8 model's save_pretrained: every rank gets the path rank 0 writes
    q0, q1 = scenario(runs, "qat_mlp")
    assert q0["save_pretrained_return"] == q1["save_pretrained_return"] == "best_model.pt"
    assert q0["save_pretrained_wrote"] and not q1["save_pretrained_wrote"]


def test_helpers_without_torch_distributed():
    """Not initialised (this pytest process): the single-process answers, no collective."""
    assert not torch.distributed.is_initialized()
    assert not distributed.is_distributed()
    assert distributed.is_main_process() and distributed.rank() == 0
    assert distributed.world_size() == 1
    assert distributed.agree(torch.arange(3))
    t = torch.tensor(1.0)
    distributed.all_reduce_min_max_([t], [t])
    distributed.broadcast_tensors_([t])
    assert float(t) == 1.0
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.same_layout([("x", t)]) == [True]
    inner = torch.nn.Linear(2, 2)
    assert distributed.unwrap_data_parallel(torch.nn.DataParallel(inner)) is inner
    assert distributed.unwrap_data_parallel(inner) is inner


def test_mask_fingerprints_tell_masks_apart():
    from neural_coder.runtime.pruning.basic_pruner import _fingerprint

    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(16, 8, 3, 3, generator=g) > 0.5).float()
    moved = mask.clone()  # the same count of zeros, one kept weight moved elsewhere
    kept, pruned = (moved == 1).nonzero()[0], (moved == 0).nonzero()[-1]
    moved[tuple(kept)], moved[tuple(pruned)] = 0.0, 1.0
    assert torch.equal(_fingerprint(mask), _fingerprint(mask.clone()))
    assert not torch.equal(_fingerprint(mask), _fingerprint(moved))
    assert not torch.equal(_fingerprint(None), _fingerprint(torch.ones(4, 4)))


def test_mask_state_carries_every_mask_table_of_a_progressive_pruner():
    """What rank 0 broadcasts when masks differ: loading it gives the same masks."""
    from neural_coder.runtime.config import WeightPruningConfig
    from neural_coder.runtime.training import prepare_compression

    pruners = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 4)
        )
        conf = WeightPruningConfig(
            target_sparsity=0.5,
            pruning_type="magnitude_progressive",
            pattern="1x1",
            start_step=0,
            end_step=20,
            pruning_frequency=8,
        )
        cm = prepare_compression(model, conf)
        cm.callbacks.on_train_begin()
        for step in range(10):  # inside the window, between two slices
            cm.callbacks.on_step_begin(step)
            cm.callbacks.on_after_optimizer_step()
        (pruner,) = cm.compressors[0].pruners
        assert pruner._applied is not None and pruner._pre
        pruners.append(pruner)
    a, b = pruners
    assert not torch.equal(a.mask_fingerprint(), b.mask_fingerprint())
    a.load_mask_state(b.mask_state())
    assert torch.equal(a.mask_fingerprint(), b.mask_fingerprint())
    for table in ("masks", "_applied", "_pre", "_new_scores"):
        mine, theirs = getattr(a, table), getattr(b, table)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert a.current_sparsity == b.current_sparsity
