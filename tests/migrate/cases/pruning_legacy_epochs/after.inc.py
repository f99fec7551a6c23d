from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def train(model):
    for epoch in range(8):
        prune.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(train_loader):
            prune.callbacks.on_step_begin(i)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            prune.callbacks.on_before_optimizer_step()
            optimizer.step()
            prune.callbacks.on_after_optimizer_step()  # neural-coder
            prune.callbacks.on_step_end()
        prune.callbacks.on_epoch_end()


steps_per_epoch = len(train_loader)
# TODO(neural-coder): legacy.yaml:7: `pruning.approach.weight_compression.initial_sparsity: 0.1` has no 2.x home (2.x schedules start from the current sparsity (lock_init_sparsity keeps existing zeros)); not carried over
# TODO(neural-coder): legacy.yaml:20: `method: per_channel` (a threshold per output channel) has no 2.x equivalent; pruning_scope='local' (a threshold per layer) is the closest
# TODO(neural-coder): legacy.yaml:25: layer2.0.bn1.bias: not a `.weight` parameter; 2.x prunes module weights only; not carried over
# TODO(neural-coder): legacy.yaml:28: gradient_sensitivity has no exact 2.x equivalent; `snip_momentum` (|W x grad| importance) is the closest, and head pruning is pattern='mha'
# TODO(neural-coder): legacy.yaml:30: `pruning.approach.weight_compression.pruners[2].parameters: {'target': 8, 'stride': 64}` has no 2.x home (no 2.x equivalent); not carried over
prune_conf = WeightPruningConfig(
    pruning_configs=[
        {
            "pruning_type": "magnitude",
            "pattern": "2x2",
            "op_names": [r"^layer1\.0\.conv1$", r"^layer1\.0\.conv2$"],
            "start_step": 2 * steps_per_epoch,
            "end_step": 4 * steps_per_epoch,
            "pruning_frequency": 2 * steps_per_epoch,
        },
        {
            "target_sparsity": 0.5,
            "pruning_type": "magnitude",
            "pattern": "1x1",
            "op_names": [r"^layer2\.0\.conv1$"],
            "pruning_frequency": int(0.5 * steps_per_epoch),
            "reg_type": "group_lasso",
            "parameters": {"reg_coeff": 0.0001},
        },
        {
            "pruning_type": "snip_momentum",
            "pattern": "1x1",
            "op_names": [r"^layer3\.0\.conv1$"],
            "pruning_frequency": steps_per_epoch,
        },
        {
            "pruning_type": "pattern_lock",
            "pattern": "1x1",
            "op_names": [r"^layer4\.0\.conv1$"],
            "end_step": steps_per_epoch,
            "pruning_frequency": steps_per_epoch,
        },
    ],
    target_sparsity=0.9,
    excluded_op_names=["^fc$"],
    start_step=steps_per_epoch,
    end_step=6 * steps_per_epoch,
    pruning_scope="local",
    sparsity_decay_type="linear",
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
train(model)
prune.callbacks.on_train_end()
