from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


def prune_train(model):
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        # TODO(neural-coder): call `compression_manager.callbacks.on_after_optimizer_step()` after this step (2.x pruning advances only through it); `compression_manager` is not visible here
        optimizer.step()


def main():
    prune_conf = WeightPruningConfig(
        target_sparsity=0.5,
        pruning_type="magnitude",
        pattern="1x1",
        start_step=0,
        end_step=10,
    )
    compression_manager = prepare_compression(model, prune_conf)
    compression_manager.callbacks.on_train_begin()
    prune_train(compression_manager.model)
    compression_manager.callbacks.on_train_end()
    quantizer_conf = PostTrainingQuantConfig(approach="static")
    return quantization.fit(
        compression_manager.model.model,
        quantizer_conf,
        calib_dataloader=loader,
        eval_func=evaluate,
    )
