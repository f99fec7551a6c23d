from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def train(model):
    for epoch in range(3):
        for step, (x, y) in enumerate(train_loader):
            prune.callbacks.on_step_begin(step)
            loss = criterion(model(x), y) / 4
            loss.backward()
            if (step + 1) % 4 == 0:
                prune.callbacks.on_before_optimizer_step()
                scaler.step(optimizer)
                prune.callbacks.on_after_optimizer_step()  # neural-coder
                scaler.update()
                optimizer.zero_grad()


# TODO(neural-coder): the optimizer steps under a condition (gradient accumulation?): `steps_per_epoch` counts batches, set it to the optimizer steps of one epoch
steps_per_epoch = len(train_loader)
prune_conf = WeightPruningConfig(
    target_sparsity=0.6,
    pruning_type="magnitude",
    pattern="1x1",
    op_names=["^fc$"],
    start_step=0,
    end_step=2 * steps_per_epoch,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
train(model)
prune.callbacks.on_train_end()
model = prune.model
