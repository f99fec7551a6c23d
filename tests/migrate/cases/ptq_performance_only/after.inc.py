from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

quantizer_conf = PostTrainingQuantConfig()
q_model = quantization.fit(model, quantizer_conf, calib_dataloader=calib_loader)
