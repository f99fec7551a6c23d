import torch

from neural_compressor.experimental import Quantization, common

model = torch.nn.Sequential(torch.nn.Linear(4, 4))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)


def eval_func(m):
    return 1.0


# quantize the model
quantizer = Quantization("conf.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader  # calibration data
quantizer.eval_func = eval_func
q_model = quantizer.fit()
q_model.save("./out")
