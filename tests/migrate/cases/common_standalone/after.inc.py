from neural_compressor.experimental.common import Criterions
import torch

train_loader = torch.utils.data.DataLoader(train_set, batch_size=32, shuffle=True)
# TODO(neural-coder): distributed=True: use a torch DistributedSampler
val_loader = torch.utils.data.DataLoader(val_set, drop_last=True, batch_size=64, collate_fn=None)
wrapped = model
metric = MyMetric(threshold=0.5)
# TODO(neural-coder): the 1.x Criterions registry has no 2.x home: build the loss in code
loss = Criterions("pytorch")["CrossEntropyLoss"]({})
