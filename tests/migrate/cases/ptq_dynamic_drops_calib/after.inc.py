from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig, TuningCriterion

quantizer_conf = PostTrainingQuantConfig(
    approach="dynamic", tuning_criterion=TuningCriterion(max_trials=10)
)
quantization.fit(model, quantizer_conf, eval_func=evaluate).save("./int8")
