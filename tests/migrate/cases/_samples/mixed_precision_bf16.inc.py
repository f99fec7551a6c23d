"""1.x MixedPrecision: bf16 conversion with an accuracy check through eval_func."""

import torch
import torch.nn as nn
from neural_compressor import mix_precision
from neural_compressor.config import AccuracyCriterion, MixedPrecisionConfig, TuningCriterion

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
data = torch.randn(64, 32)
reference = model(data).argmax(1)


def eval_func(m):
    with torch.no_grad():
        return (m(data).argmax(1) == reference).float().mean().item()


converter_conf = MixedPrecisionConfig(
    model_name="bf16_mlp",
    precisions="bf16",
    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.05),
    tuning_criterion=TuningCriterion(max_trials=4),
)
bf16_model = mix_precision.fit(model, converter_conf, eval_func=eval_func)
print("bf16 agreement", eval_func(bf16_model.model))
