import torch
from neural_compressor.config import WeightPruningConfig
from neural_compressor.training import prepare_compression


def prune_train(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss()
    for epoch in range(4):
        prune.callbacks.on_epoch_begin(epoch)
        for step, (inputs, labels) in enumerate(train_loader):
            if step >= 100:
                break
            prune.callbacks.on_step_begin(step)
            outputs = model(**inputs) if isinstance(inputs, dict) else model(inputs)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            prune.callbacks.on_before_optimizer_step()
            optimizer.step()
            prune.callbacks.on_after_optimizer_step()
            prune.callbacks.on_step_end()
        prune.callbacks.on_epoch_end()
    return model


steps_per_epoch = min(len(train_loader), 100)
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
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
prune_train(model)
prune.callbacks.on_train_end()
pruned = prune.model
