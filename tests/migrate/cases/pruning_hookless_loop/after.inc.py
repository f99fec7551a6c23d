import torch
from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression

loader = torch.utils.data.DataLoader(dataset, batch_size=8)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def train(model):
    for epoch in range(2):
        for x, y in loader:
            prune.callbacks.on_step_begin(0)  # neural-coder
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            prune.callbacks.on_before_optimizer_step()  # neural-coder
            opt.step()
            prune.callbacks.on_after_optimizer_step()  # neural-coder
            lr_scheduler.step()


steps_per_epoch = len(loader)
prune_conf = WeightPruningConfig(
    target_sparsity=0.5,
    pruning_type="magnitude",
    pattern="1x1",
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
pruned = prune.model
