from neural_compressor.experimental import Pruning, common


def train(model):
    for step, batch in enumerate(loader):
        prune.on_step_begin(step)
        loss = model(**batch).loss
        loss.backward()
        prune.on_before_optimizer_step()
        optim.step()
        prune.on_step_end()


prune = Pruning("steps.yaml")
prune.model = model
prune.train_func = train
model = prune().model
