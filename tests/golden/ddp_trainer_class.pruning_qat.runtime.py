"""Distributed training in the style of the DDP tutorial series: a Trainer class
whose __init__ wraps the model in DistributedDataParallel and keeps it on self,
_run_batch / _run_epoch / train methods, and rank 0 saving a snapshot. Runs as
one CPU process (gloo) by default, or under torchrun."""

import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Trainer:
    def __init__(self, model, train_data, optimizer, save_every, snapshot_path):
        self.rank = dist.get_rank()
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every
        self.snapshot_path = snapshot_path
        self.compression_manager = prepare_compression(
            model,
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=1,
                ),
                QuantizationAwareTrainingConfig(),
            ],
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        model = self.compression_manager.model  # neural-coder
        self.model = DDP(model)

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        output = self.model(source)
        loss = F.mse_loss(output, targets)
        loss.backward()
        self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        self.optimizer.step()
        self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        return loss.item()

    def _run_epoch(self, epoch):
        self.train_data.sampler.set_epoch(epoch)
        for source, targets in self.train_data:
            self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
            loss = self._run_batch(source, targets)
            self.compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"[rank {self.rank}] epoch {epoch}: loss {loss:.4f}")

    def _save_snapshot(self):
        torch.save(self.model.module.state_dict(), self.snapshot_path)

    def train(self, max_epochs):
        fit_pruning_schedules(
            self.compression_manager.callbacks,
            max(1, int(0.8 * (max_epochs * len(self.train_data)))),
        )  # neural-coder
        for epoch in range(max_epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            self._run_epoch(epoch)
            if self.rank == 0 and (epoch + 1) % self.save_every == 0:
                self._save_snapshot()
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder


def load_train_objs():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(256, 20, generator=g)
    targets = inputs[:, :4].sum(dim=1, keepdim=True)
    model = Regressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    return TensorDataset(inputs, targets), model, optimizer


def main(total_epochs=3, save_every=1, batch_size=16):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group(
        "gloo", rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1))
    )
    torch.manual_seed(0)
    dataset, model, optimizer = load_train_objs()
    train_data = DataLoader(dataset, batch_size=batch_size, sampler=DistributedSampler(dataset))
    trainer = Trainer(model, train_data, optimizer, save_every, "snapshot.pt")
    trainer.train(total_epochs)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
