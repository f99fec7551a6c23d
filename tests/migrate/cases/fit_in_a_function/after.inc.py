from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def train(model):
    for epoch in range(2):
        prune.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            prune.callbacks.on_step_begin(i)
            loss = model(x, y)
            loss.backward()
            prune.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            prune.callbacks.on_after_optimizer_step()  # neural-coder
        prune.callbacks.on_epoch_end()


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
