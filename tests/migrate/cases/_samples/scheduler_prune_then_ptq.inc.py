"""1.x multi-shot Scheduler: prune first (the scheduler's train_func trains), then
post-training quantization of the pruned model (append, append, fit)."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression

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
        prune.callbacks.on_epoch_begin(epoch)
        for step, (data, target) in enumerate(loader):
            prune.callbacks.on_step_begin(step)
            loss = nn.functional.cross_entropy(model(data), target)
            optimizer.zero_grad()
            loss.backward()
            prune.callbacks.on_before_optimizer_step()
            optimizer.step()
            prune.callbacks.on_after_optimizer_step()  # neural-coder
            prune.callbacks.on_step_end()
        prune.callbacks.on_epoch_end()


steps_per_epoch = len(loader)
prune_conf = WeightPruningConfig(
    target_sparsity=0.4,
    pruning_type="magnitude",
    pattern="1x1",
    op_names=["^0$", "^2$"],
    start_step=0,
    end_step=steps_per_epoch,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
train(model)
prune.callbacks.on_train_end()
quantizer_conf = PostTrainingQuantConfig(calibration_sampling_size=[64])
opt_model = quantization.fit(prune.model.model, quantizer_conf, calib_dataloader=loader)
opt_model.save("./pruned_int8")
