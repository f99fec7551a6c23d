from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

conf = PostTrainingQuantConfig(approach="static")
q_model = quantization.fit(model, conf, calib_dataloader=loader)
