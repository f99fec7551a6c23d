"""1.x pruning without a train function: the yaml `pruning.train` section drives the
1.x built-in training loop over the dataloader given in code."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Pruning, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(320, 24)
y = (x[:, :3].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 2))

prune = Pruning("builtin_loop.yaml")
prune.model = common.Model(model)
prune.train_dataloader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
pruned = prune.fit()
weights = [pruned.model[0].weight, pruned.model[2].weight]
print("sparsity", [round(float((w == 0).float().mean()), 3) for w in weights])
