import torch
from neural_compressor import quantization, set_random_seed
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

model = torch.nn.Sequential(torch.nn.Linear(4, 4))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)


def eval_func(m):
    return 1.0


# quantize the model
quantizer_conf = PostTrainingQuantConfig(
    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
    tuning_criterion=TuningCriterion(timeout=0),
)
set_random_seed(9527)
q_model = quantization.fit(model, quantizer_conf, calib_dataloader=loader, eval_func=eval_func)
q_model.save("./out")
