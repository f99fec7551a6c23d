"""Text classification with accelerate, in the style of accelerate's examples that
resume from an epoch: the run trains and scores the model in each epoch with a
glue-like metric object (add_batch / compute), and prints the score; the script ends
with accelerator.end_training()."""

import argparse

import torch
import torch.nn as nn
from accelerate import Accelerator
from torch.utils.data import DataLoader
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig


class BagOfWordsClassifier(nn.Module):
    def __init__(self, vocab_size=64, dim=32, num_labels=2):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim)
        self.hidden = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_labels)

    def forward(self, input_ids):
        return self.head(torch.relu(self.hidden(self.embed(input_ids))))


class AccuracyMetric:
    """The add_batch / compute protocol of `evaluate.load("accuracy")`."""

    def __init__(self):
        self.correct = self.total = 0

    def add_batch(self, predictions, references):
        self.correct += (predictions == references).sum().item()
        self.total += references.numel()

    def compute(self):
        result = {"accuracy": self.correct / max(self.total, 1)}
        self.correct = self.total = 0
        return result


def collate(rows):
    return {"input_ids": torch.stack([r[0] for r in rows]), "labels": torch.stack([r[1] for r in rows])}


def get_dataloaders(batch_size):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (192, 12), generator=g)
    labels = (ids < 32).sum(dim=1).gt(6).long()
    rows = list(zip(ids, labels))
    train = DataLoader(rows[:128], batch_size=batch_size, shuffle=True, collate_fn=collate, generator=g)
    evaluation = DataLoader(rows[128:], batch_size=32, collate_fn=collate)
    return train, evaluation


def training_function(args):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(args.seed)
    train_dataloader, eval_dataloader = get_dataloaders(args.batch_size)
    model = BagOfWordsClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    metric = AccuracyMetric()
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    starting_epoch = args.starting_epoch
    for epoch in range(starting_epoch, args.num_epochs):
        model.train()
        for batch in train_dataloader:
            logits = model(batch["input_ids"])
            loss = loss_fn(logits, batch["labels"])
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        if epoch == args.num_epochs - 1:  # neural-coder
            quantized_model = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
            model = quantized_model if quantized_model is not None else model  # neural-coder
            if quantized_model is not None:  # neural-coder
                quantized_model.save("neural_coder_output/ptq-dynamic")  # neural-coder

        model.eval()
        for batch in eval_dataloader:
            with torch.no_grad():
                logits = model(batch["input_ids"])
            predictions, references = accelerator.gather_for_metrics((logits.argmax(dim=-1), batch["labels"]))
            metric.add_batch(predictions=predictions, references=references)
        eval_metric = metric.compute()
        accelerator.print(f"epoch {epoch}:", eval_metric)
    accelerator.end_training()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_epochs", type=int, default=3)
    parser.add_argument("--starting_epoch", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    training_function(parser.parse_args())


if __name__ == "__main__":
    main()
