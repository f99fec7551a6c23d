from neural_compressor.experimental import Quantization, common

quantizer = Quantization("perf.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = calib_loader
quantizer.eval_func = evaluate
q_model = quantizer.fit()
