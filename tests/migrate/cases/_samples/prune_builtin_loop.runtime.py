"""1.x pruning without a train function: the yaml `pruning.train` section drives the
1.x built-in training loop over the dataloader given in code."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
x = torch.randn(320, 24)
y = (x[:, :3].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 2))

prune_train_dataloader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)


def prune_train(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    for epoch in range(3):
        prune.callbacks.on_epoch_begin(epoch)
        for step, (inputs, labels) in enumerate(prune_train_dataloader):
            if step >= 15:
                break
            prune.callbacks.on_step_begin(step)
            outputs = model(**inputs) if isinstance(inputs, dict) else model(inputs)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            prune.callbacks.on_before_optimizer_step()
            optimizer.step()
            prune.callbacks.on_after_optimizer_step()
            prune.callbacks.on_step_end()
        prune.callbacks.on_epoch_end()
    return model


steps_per_epoch = min(len(prune_train_dataloader), 15)
prune_conf = WeightPruningConfig(
    target_sparsity=0.6,
    pruning_type="magnitude",
    pattern="1x1",
    op_names=["^0$", "^2$"],
    start_step=0,
    end_step=2 * steps_per_epoch,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
prune_train(model)
prune.callbacks.on_train_end()
pruned = prune.model
weights = [pruned.model[0].weight, pruned.model[2].weight]
print("sparsity", [round(float((w == 0).float().mean()), 3) for w in weights])
