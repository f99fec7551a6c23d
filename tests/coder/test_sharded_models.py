"""A model sharded by FSDP: every approach is refused where each run shards it (the
rewritten scripts crashed their ranks, hung, or pruned nothing, measured on CPU/gloo),
with a warning where only some runs do (`if args.fsdp:`, a callback a strategy may run)."""

from __future__ import annotations

import pytest

from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

FSDP_MAIN = """import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
def train(model, loader, optimizer):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
def fsdp_main(rank, world_size, use_fsdp=True):
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model = FSDP(model)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    for epoch in range(2):
        train(model, loader, optimizer)
    torch.save(model.state_dict(), "m.pt")
if __name__ == "__main__":
    mp.spawn(fsdp_main, args=(2,), nprocs=2, join=True)
"""

BRANCHED = FSDP_MAIN.replace(
    "    model = FSDP(model)\n", "    if use_fsdp:\n        model = FSDP(model)\n"
)


@pytest.mark.parametrize("approach", ["qat", "pruning", "ptq-dynamic"])
def test_a_model_every_run_shards_is_refused(tmp_path, approach):
    path = write(tmp_path, FSDP_MAIN)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    assert "the model is sharded by FSDP at line 16" in result.output
    assert "compress with DistributedDataParallel" in result.output
    assert_untouched(path, FSDP_MAIN)


def test_a_branch_that_shards_is_a_warning(tmp_path):
    path = write(tmp_path, BRANCHED)
    result = run_cli("optimize", path, "--approach", "pruning", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "the runs that shard it will fail" in result.output
    assert "prepare_compression(" in path.read_text()
