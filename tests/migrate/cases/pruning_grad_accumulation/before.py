from neural_compressor.experimental import Pruning, common


def train(model):
    for epoch in range(3):
        for step, (x, y) in enumerate(train_loader):
            prune.on_step_begin(step)
            loss = criterion(model(x), y) / 4
            loss.backward()
            if (step + 1) % 4 == 0:
                prune.on_before_optimizer_step()
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()


prune = Pruning("accum.yaml")
prune.model = common.Model(model)
prune.train_func = train
model = prune.fit()
