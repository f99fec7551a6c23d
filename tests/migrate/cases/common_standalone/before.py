from neural_compressor.experimental import common
from neural_compressor.experimental.common import Criterions

train_loader = common.DataLoader(train_set, batch_size=32, shuffle=True, last_batch="rollover")
val_loader = common.DataLoader(val_set, 64, None, "discard", distributed=True)
wrapped = common.Model(model)
metric = common.Metric(MyMetric, "my_metric", threshold=0.5)
loss = Criterions("pytorch")["CrossEntropyLoss"]({})
