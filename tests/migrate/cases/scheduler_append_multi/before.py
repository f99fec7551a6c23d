from neural_compressor.experimental import Pruning, Quantization, Scheduler, common


def prune_train(model):
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()


def main():
    prune = Pruning("p.yaml")
    prune.train_func = prune_train
    quantizer = Quantization("q.yaml")
    quantizer.calib_dataloader = loader
    scheduler = Scheduler()
    scheduler.model = common.Model(model)
    scheduler.eval_func = evaluate
    scheduler.append(scheduler.combine(prune))
    scheduler.append(quantizer)
    return scheduler()
