from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression



def train(model):
    for epoch in range(2):
        # TODO(neural-coder): `prune.on_epoch_begin()` becomes `prune.callbacks.on_epoch_begin()`, but `prune` is not visible here; pass the compression manager in
        # TODO(neural-coder): `prune.on_epoch_begin` (pruning) is 1.x API with no 2.x counterpart here; rewrite this line by hand
        prune.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            # TODO(neural-coder): `prune.on_step_begin()` becomes `prune.callbacks.on_step_begin()`, but `prune` is not visible here; pass the compression manager in
            # TODO(neural-coder): `prune.on_step_begin` (pruning) is 1.x API with no 2.x counterpart here; rewrite this line by hand
            prune.on_step_begin(i)
            loss = model(x, y)
            loss.backward()
            # TODO(neural-coder): call `prune.callbacks.on_after_optimizer_step()` after this step (2.x pruning advances only through it); `prune` is not visible here
            optimizer.step()
        # TODO(neural-coder): `prune.on_epoch_end()` becomes `prune.callbacks.on_epoch_end()`, but `prune` is not visible here; pass the compression manager in
        # TODO(neural-coder): `prune.on_epoch_end` (pruning) is 1.x API with no 2.x counterpart here; rewrite this line by hand
        prune.on_epoch_end()


def main(model):
    """Prune the model."""
    global prune
    prune_conf = WeightPruningConfig(
        target_sparsity=0.5,
        pruning_type="magnitude",
        pattern="1x1",
        start_step=1,
        end_step=8,
    )
    prune = prepare_compression(model, prune_conf)
    prune.callbacks.on_train_begin()
    model = prune.model
    train(model)
    prune.callbacks.on_train_end()
    return prune.model
