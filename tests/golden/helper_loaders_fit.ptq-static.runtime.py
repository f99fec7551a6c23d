"""Fine-tuning in the style of compact LLM fine-tuning scripts: `main()` gets its
loaders from a `get_dataloaders()` helper that builds them and hands them back
through `accelerator.prepare`; a `fit()` function holds the training loop and
`validate()` returns the held-out loss. After training `main()` validates the model
once more and saves it.
"""

import argparse

import torch
import torch.nn as nn
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class TinyRegressor(nn.Module):
    def __init__(self, dim=8, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def synthetic(n, seed, dim=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    return TensorDataset(x, x[:, :3].sum(dim=1) + 0.05 * torch.randn(n, generator=g))


def get_dataloaders(accelerator, batch_size):
    train_dataloader = DataLoader(synthetic(256, 0), batch_size=batch_size, shuffle=True)
    val_dataloader = DataLoader(synthetic(96, 1), batch_size=batch_size)
    train_dataloader, val_dataloader = accelerator.prepare(train_dataloader, val_dataloader)
    return train_dataloader, val_dataloader


@torch.no_grad()
def validate(model, val_dataloader):
    model.eval()
    losses = [nn.functional.mse_loss(model(x), y).item() for x, y in val_dataloader]
    model.train()
    return sum(losses) / len(losses)


def fit(accelerator, model, optimizer, train_dataloader, val_dataloader, epochs):
    for epoch in range(epochs):
        for x, y in train_dataloader:
            loss = nn.functional.mse_loss(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        print(f"epoch {epoch + 1}/{epochs} val loss {validate(model, val_dataloader):.4f}")


def main(args):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    train_dataloader, val_dataloader = get_dataloaders(accelerator, args.batch_size)
    model = TinyRegressor()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model, optimizer = accelerator.prepare(model, optimizer)
    fit(accelerator, model, optimizer, train_dataloader, val_dataloader, args.epochs)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_dataloader,
        eval_func=lambda candidate: validate(candidate, val_dataloader),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    val_loss = validate(model, val_dataloader)
    print(f"final val loss: {val_loss:.4f}")
    torch.save(accelerator.unwrap_model(model).state_dict(), args.out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--out", default="regressor.pt")
    main(parser.parse_args())
