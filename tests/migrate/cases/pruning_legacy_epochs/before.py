from neural_compressor.experimental import Pruning, common


def train(model):
    for epoch in range(8):
        prune.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(train_loader):
            prune.on_batch_begin(i)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            prune.on_post_grad()
            optimizer.step()
            prune.on_batch_end()
        prune.on_epoch_end()


prune = Pruning("legacy.yaml")
prune.model = common.Model(model)
prune.pruning_func = train
prune.fit()
