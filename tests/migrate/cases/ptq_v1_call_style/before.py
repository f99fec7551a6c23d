import neural_compressor
from neural_compressor import Quantization

quantizer = Quantization("./conf.yaml")
q_model = quantizer(model, q_dataloader=calib_loader, eval_func=evaluate)
other = neural_compressor.Quantization("./conf.yaml")
print(other(model, calib_loader, None, None, evaluate))
