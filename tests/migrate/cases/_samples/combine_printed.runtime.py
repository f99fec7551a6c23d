"""1.x one-shot Scheduler.combine (pruning + quantization-aware training) whose
combination object the script prints before appending it, as 1.x examples do to
show what will run."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
x = torch.randn(128, 16)
y = (x.sum(1) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def train(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(2):
        for data, target in loader:
            scheduler_combination.callbacks.on_step_begin(0)  # neural-coder
            loss = nn.functional.cross_entropy(model(data), target)
            optimizer.zero_grad()
            loss.backward()
            scheduler_combination.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            scheduler_combination.callbacks.on_after_optimizer_step()  # neural-coder
    return model


# TODO(neural-coder): `print(scheduler_combination)` read `scheduler_combination`, a 1.x object with no 2.x counterpart; the statement was removed
steps_per_epoch = len(loader)
prune_conf = WeightPruningConfig(
    target_sparsity=0.5,
    pruning_type="magnitude",
    pattern="1x1",
    op_names=["^2$"],
    start_step=0,
    end_step=steps_per_epoch,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
quantizer_conf = QuantizationAwareTrainingConfig(model_name="mlp")
scheduler_combination = prepare_compression(model, [prune_conf, quantizer_conf])
scheduler_combination.callbacks.on_train_begin()
model = scheduler_combination.model
train(model)
scheduler_combination.callbacks.on_train_end()
opt_model = scheduler_combination.model
