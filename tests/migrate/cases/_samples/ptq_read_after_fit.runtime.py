"""1.x static quantization that reads `quantizer.model` after fit: the tuned result
is compared with the model the quantizer was given."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

torch.manual_seed(0)
x = torch.randn(96, 16)
y = (x[:, :8].sum(1) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16)
net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))


def accuracy(model):
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            correct += int((model(data).argmax(1) == target).sum())
    return correct / len(loader.dataset)


quantizer_conf = PostTrainingQuantConfig(
    approach="static",
    accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=0.5),
    tuning_criterion=TuningCriterion(max_trials=2),
)
q_model = quantization.fit(net, quantizer_conf, calib_dataloader=loader, eval_func=accuracy)
# TODO(neural-coder): `quantizer.model.model` now reads `net`, the model given to `quantizer` (as in 1.x); the compressed model is the one fit returns
print("fp32 accuracy", accuracy(net))
print("int8 accuracy", accuracy(q_model.model))
