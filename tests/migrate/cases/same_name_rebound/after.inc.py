import torch
from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

model = torch.nn.Sequential(torch.nn.Linear(4, 4))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)

quantizer_conf = PostTrainingQuantConfig(approach="static")
q_model = quantization.fit(model, quantizer_conf, calib_dataloader=loader)

# a second pass under the same name
quantizer_conf_2 = PostTrainingQuantConfig(approach="dynamic")
dq_model = quantization.fit(model, quantizer_conf_2)
