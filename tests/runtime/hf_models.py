"""Tiny Hugging Face models, data and Trainer arguments for the Trainer-integration tests and bench.

Nothing is downloaded: the BERT is built from a `BertConfig` (vocab 100, hidden
32, 2 layers), as in shared/acceptance/hf_trainer.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments


class RandomTextDataset(torch.utils.data.Dataset):
    """Random token ids; the label says whether the first token is in the upper half."""

    def __init__(self, n: int, seq_len: int = 16, vocab: int = 100, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, seq_len), generator=g)
        self.labels = (self.ids[:, 0] > vocab // 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones_like(self.ids[i]),
            "labels": self.labels[i],
        }


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def tiny_bert(seed: int = 0, dropout: float = 0.1) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def training_args(output_dir: str, **overrides: Any) -> TrainingArguments:
    """CPU, no reporting, no checkpoints, no progress bars; a few steps."""
    values: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": 6,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 32,
        "learning_rate": 1e-3,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        "logging_strategy": "no",
        "seed": 0,
    }
    values.update(overrides)
    return TrainingArguments(**values)


class SummedLossModel(nn.Module):
    """A classifier whose loss is summed and divided by `num_items_in_batch` (the labelled
    items of the whole accumulated batch), as Hugging Face causal LMs do: the Trainer
    then does not divide its loss by the gradient accumulation steps."""

    def __init__(self, vocab: int = 100, hidden: int = 16, classes: int = 2, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        logits = self.head(self.embed(input_ids).mean(dim=1))
        out = {"logits": logits}
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
            items = kwargs.get("num_items_in_batch")
            out["loss"] = loss / (items if items is not None else labels.numel())
        return out
