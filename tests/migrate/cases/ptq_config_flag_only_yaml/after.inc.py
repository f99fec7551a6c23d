"""1.x post-training quantization whose yaml comes from a required --config flag."""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

parser = argparse.ArgumentParser()
parser.add_argument("--config", type=str, required=True, help="the 1.x yaml")
args = parser.parse_args()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
loader = DataLoader(TensorDataset(torch.randn(64, 16), torch.randint(0, 4, (64,))), batch_size=8)
# TODO(neural-coder): `args.config` has no default here; migrated from conf.yaml, the only quantization yaml next to the script (the 2.x code reads no yaml: its settings are now in code)
quantizer_conf = PostTrainingQuantConfig(
    approach="static",
    calibration_sampling_size=[32],
    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.5),
    tuning_criterion=TuningCriterion(max_trials=2),
)
q_model = quantization.fit(model, quantizer_conf, calib_dataloader=loader)
