import torch

from neural_compressor.experimental import Pruning

loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8
)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def train(model, loader, epochs, agent):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    agent.on_train_begin()
    for epoch in range(epochs):
        agent.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            agent.on_step_begin(i)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            agent.on_step_end()
        agent.on_epoch_end()
    agent.on_train_end()
    return model


prune = Pruning("prune.yaml")
prune.model = model
prune.train_func = lambda m: train(m, loader, 2, prune)
pruned = prune.fit()
