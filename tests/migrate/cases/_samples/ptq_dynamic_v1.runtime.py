"""The 1.0-style API still shipped in 1.14: `neural_compressor.Quantization(yaml)` called
with the model and functions, post-training dynamic quantization from the yaml."""

import torch
import torch.nn as nn
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
samples = torch.randn(32, 8)
labels = model(samples).argmax(1)


def evaluate(m):
    with torch.no_grad():
        return (m(samples).argmax(1) == labels).float().mean().item()


quantizer_conf = PostTrainingQuantConfig(
    approach="dynamic",
    accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=0.05),
    tuning_criterion=TuningCriterion(max_trials=5),
)
q_model = quantization.fit(model, quantizer_conf, eval_func=evaluate)  # 1.0 style: the model and functions go to the call
print("int8 accuracy", evaluate(q_model.model))
