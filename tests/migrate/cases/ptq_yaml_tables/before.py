import torch

from neural_compressor.experimental import Quantization, common


def main(model, calib, val):
    quantizer = Quantization("tables.yaml")
    quantizer.model = common.Model(model)
    quantizer.calib_dataloader = calib
    quantizer.eval_dataloader = val
    return quantizer()
