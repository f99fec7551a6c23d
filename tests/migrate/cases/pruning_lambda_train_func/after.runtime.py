import torch
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8
)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def train(model, loader, epochs, agent):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    agent.callbacks.on_train_begin()
    for epoch in range(epochs):
        agent.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            agent.callbacks.on_step_begin(i)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            agent.callbacks.on_before_optimizer_step()  # neural-coder
            opt.step()
            agent.callbacks.on_after_optimizer_step()  # neural-coder
            agent.callbacks.on_step_end()
        agent.callbacks.on_epoch_end()
    agent.callbacks.on_train_end()
    return model


prune_train_func = lambda m: train(m, loader, 2, prune)
steps_per_epoch = len(loader)
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
prune_train_func(prune.model)
pruned = prune.model
