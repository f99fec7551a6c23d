from neural_compressor import mix_precision
from neural_compressor.config import MixedPrecisionConfig, TuningCriterion

# TODO(neural-coder): `converter.postprocess = common.Postprocess(Shift)`: 2.x has no postprocess; apply it inside eval_func; removed
converter_conf = MixedPrecisionConfig(
    device="cpu",
    model_name="mp",
    precisions="bf16",
    tuning_criterion=TuningCriterion(timeout=60),
)
out = mix_precision.fit(
    model, converter_conf, eval_dataloader=val_loader, eval_metric=TopK(k=1)
)
