"""1.x pruning with the step-based `weight_compression_pytorch` pruner (1.13/1.14):
two pruners with their own settings, and the component passed into a helper that
runs one epoch and calls the hooks on its parameter."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Pruning, common
from torch.utils.data import DataLoader, TensorDataset


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
        agent.on_step_begin(i)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        agent.on_before_optimizer_step()
        optimizer.step()
        agent.on_step_end()


def train(model):
    prune.on_train_begin()
    for epoch in range(3):
        prune.on_epoch_begin(epoch)
        train_one_epoch(model, train_loader, optimizer, prune)
        prune.on_epoch_end()
    prune.on_train_end()


def sparsity(m):
    weights = [m.fc1.weight, m.fc2.weight]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


prune = Pruning("prune_steps.yaml")
prune.model = common.Model(model)
prune.train_func = train
prune.eval_func = sparsity
model = prune.fit()
print("sparsity", sparsity(model.model))
