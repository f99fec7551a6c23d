"""1.x multi-shot Scheduler: prune first (the scheduler's train_func trains), then
post-training quantization of the pruned model (append, append, fit)."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Pruning, Quantization, Scheduler, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(192, 3, 8, 8)
y = (x.mean((1, 2, 3)) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=32)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3),
    nn.ReLU(),
    nn.Conv2d(8, 8, 3),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(8 * 4 * 4, 2),
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def train(model):
    for epoch in range(2):
        prune.on_epoch_begin(epoch)
        for step, (data, target) in enumerate(loader):
            prune.on_step_begin(step)
            loss = nn.functional.cross_entropy(model(data), target)
            optimizer.zero_grad()
            loss.backward()
            prune.on_before_optimizer_step()
            optimizer.step()
            prune.on_step_end()
        prune.on_epoch_end()


prune = Pruning("sched_prune.yaml")
quantizer = Quantization("sched_ptq.yaml")
quantizer.calib_dataloader = loader
scheduler = Scheduler()
scheduler.model = common.Model(model)
scheduler.train_func = train
scheduler.append(prune)
scheduler.append(quantizer)
opt_model = scheduler()
opt_model.save("./pruned_int8")
