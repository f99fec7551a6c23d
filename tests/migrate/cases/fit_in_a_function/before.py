from neural_compressor.experimental import Pruning, common

prune = Pruning("p.yaml")


def train(model):
    for epoch in range(2):
        prune.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            prune.on_step_begin(i)
            loss = model(x, y)
            loss.backward()
            optimizer.step()
        prune.on_epoch_end()


def main(model):
    """Prune the model."""
    prune.model = common.Model(model)
    prune.train_func = train
    return prune.fit()
