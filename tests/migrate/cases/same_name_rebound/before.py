import torch

from neural_compressor.experimental import Quantization, common

model = torch.nn.Sequential(torch.nn.Linear(4, 4))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)

quantizer = Quantization("static.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader
q_model = quantizer.fit()

# a second pass under the same name
quantizer = Quantization("dynamic.yaml")
quantizer.model = common.Model(model)
dq_model = quantizer.fit()
