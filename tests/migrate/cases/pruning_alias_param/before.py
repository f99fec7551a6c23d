from neural_compressor.experimental import Pruning, common


def train_epoch(model, loader, optimizer, epoch, pruner=None):
    pruner.on_epoch_begin(epoch)
    for i, (x, y) in enumerate(loader):
        pruner.on_step_begin(i)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        pruner.on_before_optimizer_step()
        optimizer.step()
        pruner.on_step_end()
    pruner.on_epoch_end()


def main():
    prune = Pruning("alias.yaml")
    prune.model = common.Model(model)

    def train_func(model):
        for epoch in range(2):
            train_epoch(model, train_loader, optimizer, epoch, pruner=prune)

    prune.train_func = train_func
    model_pruned = prune.fit()
    return model_pruned
