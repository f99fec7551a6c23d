from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

quantizer_conf = PostTrainingQuantConfig()
q_model = quantization.fit(
    model, quantizer_conf, calib_dataloader=calib_loader, eval_func=evaluate
)
other_conf = PostTrainingQuantConfig()
print(quantization.fit(
    model, other_conf, calib_dataloader=calib_loader, eval_func=evaluate
))
