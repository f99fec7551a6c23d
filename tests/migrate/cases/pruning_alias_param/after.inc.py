from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def train_epoch(model, loader, optimizer, epoch, pruner=None):
    pruner.callbacks.on_epoch_begin(epoch)
    for i, (x, y) in enumerate(loader):
        pruner.callbacks.on_step_begin(i)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        pruner.callbacks.on_before_optimizer_step()
        optimizer.step()
        pruner.callbacks.on_after_optimizer_step()  # neural-coder
        pruner.callbacks.on_step_end()
    pruner.callbacks.on_epoch_end()


def main():
    def train_func(model):
        for epoch in range(2):
            train_epoch(model, train_loader, optimizer, epoch, pruner=prune)

    steps_per_epoch = len(train_loader)
    prune_conf = WeightPruningConfig(
        target_sparsity=0.5,
        pruning_type="magnitude",
        pattern="1x1",
        op_names=["^0$"],
        start_step=0,
        end_step=steps_per_epoch,
        pruning_scope="local",
        pruning_frequency=steps_per_epoch,
        sparsity_decay_type="linear",
    )
    prune = prepare_compression(model, prune_conf)
    prune.callbacks.on_train_begin()
    train_func(prune.model)
    prune.callbacks.on_train_end()
    model_pruned = prune.model
    return model_pruned
