"""1.x static quantization whose calibration data the yaml built from a dataset
(`quantization.calibration.dataloader`); the script itself only has the loader its
evaluation function reads."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

torch.manual_seed(0)
features = torch.randn(80, 12)
labels = (features[:, 0] > 0).long()
val_loader = DataLoader(TensorDataset(features, labels), batch_size=8)
model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 2))


def eval_func(model):
    correct = total = 0
    with torch.no_grad():
        for inputs, target in val_loader:
            correct += int((model(inputs).argmax(1) == target).sum())
            total += len(target)
    return correct / total


# TODO(neural-coder): yaml_calibration.yaml:9: the calibration dataloader was built from a dataset in the yaml; calibration now uses `val_loader`, the loader `eval_func` iterates over: build a calibration loader from training data if that is not representative
quantizer_conf = PostTrainingQuantConfig(
    approach="static",
    calibration_sampling_size=[16],
    accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=0.5),
    tuning_criterion=TuningCriterion(max_trials=2),
)
q_model = quantization.fit(
    model, quantizer_conf, calib_dataloader=val_loader, eval_func=eval_func
)
q_model.save("./yaml_calibration_int8")
