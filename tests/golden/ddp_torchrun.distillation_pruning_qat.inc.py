"""Data-parallel training launched with `torchrun --nproc_per_node N ddp_torchrun.py`
(gloo, so it runs on CPUs). Each rank reads its shard through a DistributedSampler;
rank 0 evaluates and saves."""

import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
import copy
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def synthetic_digits(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randn(n, 1, 28, 28, generator=g) * 0.3
    images[torch.arange(n), 0, labels * 2 + 4, 4:24] += 2.0  # a bright row per class
    return TensorDataset(images, labels)


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    model.train()
    return correct / len(loader.dataset)


def main():
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    epochs = int(os.environ.get("EPOCHS", "3"))
    torch.manual_seed(0)

    train_set = synthetic_digits(512, seed=0)
    sampler = DistributedSampler(train_set, shuffle=True, seed=0)
    train_loader = DataLoader(train_set, batch_size=32, sampler=sampler)
    test_loader = DataLoader(synthetic_digits(256, seed=1), batch_size=64)

    model = ConvNet()
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        [
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
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
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    model = DDP(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit_pruning_schedules(
        compression_manager.callbacks, max(1, int(0.8 * (epochs * len(train_loader))))
    )  # neural-coder

    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        sampler.set_epoch(epoch)
        for images, labels in train_loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            optimizer.zero_grad()
            output = model(images)
            loss = F.cross_entropy(output, labels)
            loss = compression_manager.callbacks.on_after_compute_loss(images, output, loss)  # neural-coder
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        if rank == 0:
            print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {evaluate(model.module, test_loader):.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    if rank == 0:
        torch.save(model.module.state_dict(), "ddp_model.pt")
    dist.barrier()  # every rank is done before the process group goes
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
