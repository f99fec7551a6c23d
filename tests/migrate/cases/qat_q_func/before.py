import copy

from neural_compressor.experimental import Quantization, common


def training_func_for_nc(model):
    for batch, target in loader:
        loss = criterion(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


quantizer = Quantization("./qat.yaml")
quantizer.model = common.Model(copy.deepcopy(model))
quantizer.q_func = training_func_for_nc
quantizer.calib_dataloader = loader
q_model = quantizer.fit()
q_model.save("./qat_out")
