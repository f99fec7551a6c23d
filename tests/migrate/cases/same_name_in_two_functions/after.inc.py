import torch

from neural_compressor.experimental import Quantization, common
from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)


def run_static(model, conf_path):
    # TODO(neural-coder): `quantizer` is built from `conf_path`, which this tool cannot read (it reads a yaml path written as a string, a name bound to one, or an argparse default); left as 1.x code
    quantizer = Quantization(conf_path)
    quantizer.model = common.Model(model)
    quantizer.calib_dataloader = loader
    return quantizer.fit()


def run_dynamic(model):
    quantizer_conf = PostTrainingQuantConfig(approach="dynamic")
    return quantization.fit(model, quantizer_conf)
