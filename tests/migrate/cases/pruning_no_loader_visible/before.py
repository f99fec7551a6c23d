from neural_compressor.experimental import Pruning, common


def main(model, make_loader):
    loader = make_loader()

    def train(model):
        for epoch in range(2):
            prune.on_epoch_begin(epoch)
            for x, y in iter_batches():
                prune.on_step_begin(0)
                loss = model(x, y)
                loss.backward()
                optimizer.step()
            prune.on_epoch_end()

    prune = Pruning("noloader.yaml")
    prune.model = common.Model(model)
    prune.train_func = train
    return prune.fit()
