"""1.x pruning with the step-based `weight_compression_pytorch` pruner (1.13/1.14):
two pruners with their own settings, and the component passed into a helper that
runs one epoch and calls the hooks on its parameter."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


torch.manual_seed(0)
features = torch.randn(256, 32)
labels = (features[:, 0] > 0).long()
train_loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def train_one_epoch(model, loader, optimizer, agent):
    model.train()
    for i, (x, y) in enumerate(loader):
        agent.callbacks.on_step_begin(i)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        agent.callbacks.on_before_optimizer_step()
        optimizer.step()
        agent.callbacks.on_after_optimizer_step()  # neural-coder
        agent.callbacks.on_step_end()


def train(model):
    prune.callbacks.on_train_begin()
    for epoch in range(3):
        prune.callbacks.on_epoch_begin(epoch)
        train_one_epoch(model, train_loader, optimizer, prune)
        prune.callbacks.on_epoch_end()
    prune.callbacks.on_train_end()


def sparsity(m):
    weights = [m.fc1.weight, m.fc2.weight]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


prune_conf = WeightPruningConfig(
    pruning_configs=[
        {"pruning_type": "snip_momentum", "pattern": "4x1", "op_names": ["fc1"]},
        {"target_sparsity": 0.6, "op_names": ["fc2"], "pruning_scope": "local"},
    ],
    target_sparsity=0.5,
    pruning_type="magnitude",
    pattern="1x1",
    excluded_op_names=["head"],
    start_step=2,
    end_step=30,
    pruning_scope="global",
    pruning_frequency=4,
    sparsity_decay_type="exp",
    pruning_op_types=["Linear"],
)
prune = prepare_compression(model, prune_conf)
train(prune.model)
model = prune.model
print("sparsity", sparsity(model.model))
