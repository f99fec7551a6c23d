"""1.x post-training quantization whose yaml comes from a required --config flag."""

import argparse

import torch
from neural_compressor.experimental import Quantization, common
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--config", type=str, required=True, help="the 1.x yaml")
args = parser.parse_args()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
loader = DataLoader(TensorDataset(torch.randn(64, 16), torch.randint(0, 4, (64,))), batch_size=8)
quantizer = Quantization(args.config)
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader
q_model = quantizer.fit()
