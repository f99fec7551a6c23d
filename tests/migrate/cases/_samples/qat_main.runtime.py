"""1.x quantization-aware training: the yaml says quant_aware_training, `q_func` trains
(1.x prepared the model for QAT around it), and eval_func was used for tuning."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import set_random_seed
from neural_coder.runtime.config import AccuracyCriterion, QuantizationAwareTrainingConfig, TuningCriterion
from neural_coder.runtime.training import prepare_compression


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.relu(self.conv(x))))


def train(model, loader, epochs=2):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(epochs):
        for images, target in loader:
            loss = nn.functional.cross_entropy(model(images), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def main():
    torch.manual_seed(0)
    images = torch.randn(96, 1, 8, 8)
    target = (images.mean((1, 2, 3)) > 0).long()
    loader = DataLoader(TensorDataset(images, target), batch_size=16)
    model = Net()

    def q_func(model):
        return train(model, loader)

    def eval_func(model):
        model.eval()
        with torch.no_grad():
            return (model(images).argmax(1) == target).float().mean().item()

    # TODO(neural-coder): 1.x tuned QAT with eval_func against the accuracy criterion (retraining per trial); the block below trains once. For accuracy-driven tuning use training.fit(compression_manager, train_func, eval_func=...) with a train_func that returns the model
    quantizer_conf = QuantizationAwareTrainingConfig(
        model_name="qat_net",
        op_name_dict={
            "conv": {"activation": {"dtype": ["fp32"]}, "weight": {"dtype": ["fp32"]}}
        },
        accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=0.05),
        tuning_criterion=TuningCriterion(timeout=0, max_trials=3),
    )
    set_random_seed(7)
    quantizer = prepare_compression(model, quantizer_conf)
    quantizer.callbacks.on_train_begin()
    model = quantizer.model
    q_func(model)
    quantizer.callbacks.on_train_end()
    q_model = quantizer.model
    q_model.save("./qat_saved")
    return q_model


if __name__ == "__main__":
    result = main()
