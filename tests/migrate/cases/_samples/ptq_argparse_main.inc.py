"""1.x post-training static quantization driven from main(): argparse picks the yaml,
the data goes through common.DataLoader and a user metric through common.Metric,
and an optional performance benchmark reads evaluation.performance from the same yaml."""

import argparse

import torch
from torch import nn
from torch.utils.data import TensorDataset
from neural_compressor import benchmark, quantization, set_random_seed, set_workspace
from neural_compressor.config import AccuracyCriterion, BenchmarkConfig, PostTrainingQuantConfig, TuningCriterion


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

    quantizer_conf = PostTrainingQuantConfig(
        device="cpu",
        approach="static",
        calibration_sampling_size=[16, 32],
        recipes={
            "first_conv_or_matmul_quantization": True,
            "last_conv_or_matmul_quantization": False,
        },
        op_type_dict={
            ".*": {
                "activation": {"algorithm": ["minmax"]},
                "weight": {"granularity": ["per_channel"], "scheme": ["sym"]},
            },
            "Linear": {"activation": {"dtype": ["uint8"]}},
        },
        accuracy_criterion=AccuracyCriterion(
            higher_is_better=True, criterion="relative", tolerable_loss=0.02
        ),
        quant_level=1,
        tuning_criterion=TuningCriterion(
            strategy="basic", objective="performance", timeout=0, max_trials=20
        ),
    )
    set_random_seed(42)
    set_workspace("./nc_workspace_ptq")
    q_model = quantization.fit(
        model,
        quantizer_conf,
        calib_dataloader=torch.utils.data.DataLoader(dataset, batch_size=8),
        eval_dataloader=torch.utils.data.DataLoader(dataset, drop_last=True, batch_size=8),
        eval_metric=Accuracy(),
    )
    q_model.save("./ptq_saved")

    if args.benchmark:
        # TODO(neural-coder): ptq_conf.yaml:51: `evaluation.performance.configs.kmp_blocktime: 1` has no 2.x home (BenchmarkConfig has no KMP settings; export KMP_BLOCKTIME yourself); not carried over
        evaluator_conf = BenchmarkConfig(
            device="cpu",
            model_name="mlp_classifier",
            warmup=2,
            iteration=10,
            cores_per_instance=1,
            num_of_instance=1,
        )
        benchmark.fit(
            q_model,
            evaluator_conf,
            b_dataloader=torch.utils.data.DataLoader(dataset, batch_size=8),
        )
    return q_model


if __name__ == "__main__":
    result = main()
