"""Inference with a Hugging Face checkpoint loaded by from_pretrained.

The checkpoint is written locally first (this machine cannot download), the
way a fine-tuned model sits in an output directory."""

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

CHECKPOINT = Path("tiny-bert-checkpoint")


def write_checkpoint(path: Path) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(path)


def collate(rows):
    ids = torch.stack(rows)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def agreement(model, loader, reference):
    """Fraction of predictions that agree with the reference labels."""
    model.eval()
    hits = seen = 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            predictions = model(**batch).logits.argmax(-1)
            hits += (predictions == reference[i]).sum().item()
            seen += predictions.numel()
    return hits / seen


def main():
    write_checkpoint(CHECKPOINT)
    ids = torch.randint(1, 100, (64, 16), generator=torch.Generator().manual_seed(1))
    eval_loader = DataLoader(list(ids), batch_size=16, collate_fn=collate)
    model = AutoModelForSequenceClassification.from_pretrained(CHECKPOINT)
    with torch.no_grad():
        reference = [model(**batch).logits.argmax(-1) for batch in eval_loader]
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=lambda candidate: agreement(candidate, eval_loader, reference),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    score = agreement(model, eval_loader, reference)
    print(f"agreement with fp32: {score:.3f}")


if __name__ == "__main__":
    main()
