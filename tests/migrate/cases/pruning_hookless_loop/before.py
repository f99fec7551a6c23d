import torch
from neural_compressor.experimental import Pruning, common

loader = torch.utils.data.DataLoader(dataset, batch_size=8)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def train(model):
    for epoch in range(2):
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            lr_scheduler.step()


prune = Pruning("hookless.yaml")
prune.model = common.Model(model)
prune.train_func = train
pruned = prune.fit()
