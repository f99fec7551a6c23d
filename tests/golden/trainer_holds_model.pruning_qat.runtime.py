"""A small trainer class that is handed the model (the minGPT style): the script builds
the model, gives it to `Trainer(config, model, dataset)`, runs `trainer.run()`, and then
goes on with its own `model`: it evaluates it and saves its weights."""

import argparse
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


@dataclass
class TrainerConfig:
    batch_size: int = 16
    learning_rate: float = 0.05
    max_iters: int = 40


class Trainer:
    def __init__(self, config, model, train_dataset):
        self.config = config
        self.model = model
        self.train_dataset = train_dataset
        self.iter_num = 0

    def run(self):
        model, config = self.model, self.config
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
        loader = DataLoader(self.train_dataset, batch_size=config.batch_size, shuffle=True)
        model.train()
        data_iter = iter(loader)
        self.compression_manager = prepare_compression(
            model,
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=max(1, int(0.8 * (config.max_iters))),
                ),
                QuantizationAwareTrainingConfig(),
            ],
            in_place=True,
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        while True:
            self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
            try:
                x, y = next(data_iter)
            except StopIteration:
                data_iter = iter(loader)
                x, y = next(data_iter)
            loss = nn.functional.cross_entropy(model(x), y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            self.iter_num += 1
            if self.iter_num >= config.max_iters:
                break
            self.compression_manager.callbacks.on_step_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder


def accuracy(model, dataset):
    model.eval()
    x, y = dataset.tensors
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-iters", type=int, default=40)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = (x[:, :4].sum(dim=1) > 0).long()
    train_dataset = TensorDataset(x[:448], y[:448])
    val_dataset = TensorDataset(x[448:], y[448:])
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    trainer = Trainer(TrainerConfig(max_iters=args.max_iters), model, train_dataset)
    trainer.run()
    print(f"val accuracy {accuracy(model, val_dataset):.3f}")
    torch.save(model.state_dict(), "trainer_model.pt")


if __name__ == "__main__":
    main()
