from neural_compressor.experimental import Pruning, common

prune = Pruning("builtin.yaml")
prune.model = common.Model(model)
prune.train_dataloader = train_loader
prune.eval_dataloader = val_loader
pruned = prune.fit()
