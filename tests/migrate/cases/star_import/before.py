from neural_compressor.experimental import *

quantizer = Quantization("conf.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader
q_model = quantizer.fit()
