from neural_compressor.experimental import MixedPrecision, common

converter = MixedPrecision("mp.yaml")
converter.precisions = ["bf16", "fp32"]
converter.model = common.Model(model)
converter.eval_dataloader = val_loader
converter.metric = common.Metric(TopK, name="top1", k=1)
converter.postprocess = common.Postprocess(Shift)
out = converter()
