from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def train(model):
    for step, batch in enumerate(loader):
        prune.callbacks.on_step_begin(step)
        loss = model(**batch).loss
        loss.backward()
        prune.callbacks.on_before_optimizer_step()
        optim.step()
        prune.callbacks.on_after_optimizer_step()  # neural-coder
        prune.callbacks.on_step_end()


prune_conf = WeightPruningConfig(
    target_sparsity=0.8,
    pruning_type="snip_momentum_progressive",
    pattern="2:4",
    op_names=["layer.*attention"],
    excluded_op_names=["classifier", "pooler"],
    start_step=1,
    end_step=100,
    pruning_scope="local",
    pruning_frequency=10,
    max_sparsity_ratio_per_op=0.95,
    sparsity_decay_type="cos",
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
train(model)
prune.callbacks.on_train_end()
model = prune.model.model
