from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def main(model, make_loader):
    loader = make_loader()

    def train(model):
        for epoch in range(2):
            prune.callbacks.on_epoch_begin(epoch)
            for x, y in iter_batches():
                prune.callbacks.on_step_begin(0)
                loss = model(x, y)
                loss.backward()
                prune.callbacks.on_before_optimizer_step()  # neural-coder
                optimizer.step()
                prune.callbacks.on_after_optimizer_step()  # neural-coder
            prune.callbacks.on_epoch_end()

    # TODO(neural-coder): set `steps_per_epoch` to the number of optimizer steps in one epoch (the 1.x yaml counts epochs, 2.x counts steps); no dataloader visible here to count them
    steps_per_epoch = 1
    prune_conf = WeightPruningConfig(
        target_sparsity=0.3,
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
    return prune.model
