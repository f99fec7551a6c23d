from neural_compressor.experimental import Quantization, common

quantizer = Quantization("dyn.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = calib_loader
quantizer.eval_func = evaluate
quantizer.fit().save("./int8")
