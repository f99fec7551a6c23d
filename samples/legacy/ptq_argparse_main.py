"""1.x post-training static quantization driven from main(): argparse picks the yaml,
the data goes through common.DataLoader and a user metric through common.Metric,
and an optional performance benchmark reads evaluation.performance from the same yaml."""

import argparse

import torch
from neural_compressor.experimental import Benchmark, Quantization, common
from torch import nn
from torch.utils.data import TensorDataset


class Accuracy:
    """A 1.x user metric: reset / update(preds, labels) / result."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.correct = 0
        self.total = 0

    def update(self, preds, labels):
        self.correct += int((preds.argmax(-1) == labels).sum())
        self.total += int(labels.numel())

    def result(self):
        return self.correct / max(self.total, 1)


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="ptq_conf.yaml")
    parser.add_argument("--benchmark", action="store_true")
    args = parser.parse_args()

    model = build_model()
    inputs = torch.randn(64, 16)
    dataset = TensorDataset(inputs, model(inputs).argmax(1))

    quantizer = Quantization(args.config)
    quantizer.model = common.Model(model)
    quantizer.calib_dataloader = common.DataLoader(dataset, batch_size=8)
    quantizer.eval_dataloader = common.DataLoader(dataset, batch_size=8, last_batch="discard")
    quantizer.metric = common.Metric(Accuracy, name="acc")
    q_model = quantizer()
    q_model.save("./ptq_saved")

    if args.benchmark:
        evaluator = Benchmark(args.config)
        evaluator.model = q_model
        evaluator.b_dataloader = common.DataLoader(dataset, batch_size=8)
        evaluator("performance")
    return q_model


if __name__ == "__main__":
    result = main()
