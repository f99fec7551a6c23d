import torch

from neural_compressor.experimental import Quantization, common

loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)


def run_static(model, conf_path):
    quantizer = Quantization(conf_path)
    quantizer.model = common.Model(model)
    quantizer.calib_dataloader = loader
    return quantizer.fit()


def run_dynamic(model):
    quantizer = Quantization("dynamic.yaml")
    quantizer.model = common.Model(model)
    return quantizer.fit()
