from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression

# TODO(neural-coder): `prune.train_dataloader = train_loader`: the 1.x built-in training loop read it; 2.x has none; removed
# TODO(neural-coder): `prune.eval_dataloader = val_loader`: 2.x pruning does not evaluate (1.x only logged the score); removed
# TODO(neural-coder): set `steps_per_epoch` to the number of optimizer steps in one epoch (the 1.x yaml counts epochs, 2.x counts steps); no dataloader visible here to count them
steps_per_epoch = 1
# TODO(neural-coder): builtin.yaml:5: `pruning.train` (start_epoch, end_epoch, iteration, optimizer, criterion) described the 1.x built-in training loop; write that loop (see the TODO below)
prune_conf = WeightPruningConfig(
    target_sparsity=0.5,
    pruning_type="magnitude",
    pattern="1x1",
    start_step=0,
    end_step=2 * steps_per_epoch,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
# TODO(neural-coder): 1.x trained with its built-in loop from the yaml `train` section; 2.x has no built-in loop: train the model here, calling the callbacks
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
prune.callbacks.on_train_end()
pruned = prune.model
