"""A Hydra-configured training entry point: `@hydra.main` decorates `main(cfg)`, and the
run reads `cfg.train.epochs`, `cfg.train.lr` and `cfg.model.hidden` from the config.
(Only rewritten in the tests, never run: it needs hydra and omegaconf.)"""

import logging

import hydra
import torch
import torch.nn as nn
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

log = logging.getLogger(__name__)


def build_model(cfg):
    hidden = cfg.model.hidden
    return nn.Sequential(nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def get_loaders(cfg):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 12, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=cfg.train.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=cfg.train.batch_size)
    return train, val


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    train_loader, val_loader = get_loaders(cfg)
    model = build_model(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(cfg.train.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        acc = evaluate(model, val_loader)
        log.info("epoch %d val accuracy %.3f", epoch, acc)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda candidate: evaluate(candidate, val_loader),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    torch.save(model.state_dict(), cfg.output_path)
    return acc


if __name__ == "__main__":
    main()
