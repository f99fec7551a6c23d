"""Hugging Face `*_no_trainer.py` example style: argparse with --max_train_steps,
the step budget derived from the loader, recomputed after `accelerator.prepare`
shards it, and a loop that stops when the budget is spent."""

import argparse
import math

import torch
import torch.nn as nn
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset


def parse_args():
    parser = argparse.ArgumentParser(description="Train a small classifier without a Trainer")
    parser.add_argument("--per_device_train_batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--max_train_steps", type=int, default=None, help="overrides num_train_epochs")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--output_dir", type=str, default="no_trainer_out")
    return parser.parse_args()


class Classifier(nn.Module):
    def __init__(self, features: int = 24, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, inputs):
        return self.head(self.body(inputs))


def make_dataset(n, seed):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 24, generator=g)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0.8).long()
    return TensorDataset(inputs, labels)


def main():
    args = parse_args()
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=args.gradient_accumulation_steps)
    torch.manual_seed(0)
    train_dataloader = DataLoader(make_dataset(320, 0), batch_size=args.per_device_train_batch_size, shuffle=True)
    eval_dataloader = DataLoader(make_dataset(96, 1), batch_size=32)

    model = Classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    criterion = nn.CrossEntropyLoss()

    overrode_max_train_steps = False
    num_update_steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        args.max_train_steps = args.num_train_epochs * num_update_steps_per_epoch
        overrode_max_train_steps = True

    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # the loader may have changed size: recompute the budget as the examples do
    num_update_steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    if overrode_max_train_steps:
        args.max_train_steps = args.num_train_epochs * num_update_steps_per_epoch
    args.num_train_epochs = math.ceil(args.max_train_steps / num_update_steps_per_epoch)

    completed_steps = 0
    for epoch in range(args.num_train_epochs):
        model.train()
        for step, (inputs, labels) in enumerate(train_dataloader):
            with accelerator.accumulate(model):
                logits = model(inputs)
                loss = criterion(logits, labels)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                completed_steps += 1
            if completed_steps >= args.max_train_steps:
                break

        model.eval()
        correct = 0
        for inputs, labels in eval_dataloader:
            with torch.no_grad():
                predictions = model(inputs).argmax(dim=-1)
            correct += accelerator.gather_for_metrics((predictions == labels).sum()).sum().item()
        accelerator.print(f"epoch {epoch}: accuracy {correct / len(eval_dataloader.dataset):.3f}")

    accelerator.wait_for_everyone()
    unwrapped_model = accelerator.unwrap_model(model)
    torch.save(unwrapped_model.state_dict(), f"{args.output_dir}.pt")


if __name__ == "__main__":
    main()
