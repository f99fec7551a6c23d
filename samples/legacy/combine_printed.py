"""1.x one-shot Scheduler.combine (pruning + quantization-aware training) whose
combination object the script prints before appending it, as 1.x examples do to
show what will run."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Pruning, Quantization, Scheduler, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(128, 16)
y = (x.sum(1) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def train(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(2):
        for data, target in loader:
            loss = nn.functional.cross_entropy(model(data), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


prune = Pruning("combine_prune.yaml")
prune.train_func = train
quantizer = Quantization("combine_qat.yaml")
scheduler = Scheduler()
scheduler.model = common.Model(model)
scheduler_combination = scheduler.combine(prune, quantizer)
print(scheduler_combination)
scheduler.append(scheduler_combination)
opt_model = scheduler.fit()
