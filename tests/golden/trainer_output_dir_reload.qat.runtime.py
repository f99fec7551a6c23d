"""Fine-tune with the Trainer, `trainer.save_model()` with no folder (it saves to the
TrainingArguments' output_dir, given from the command line), then load that folder back
by the command-line name and classify with it."""

import argparse

import numpy as np
import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback, OptimizedModel
from neural_coder.runtime.training import prepare_compression


class ParityRows(torch.utils.data.Dataset):
    def __init__(self, size, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 80, (size, 12), generator=g)
        self.labels = (self.ids.sum(-1) % 2).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        return {"input_ids": self.ids[idx], "attention_mask": torch.ones(12, dtype=torch.long), "labels": self.labels[idx]}


def accuracy(p):
    return {"accuracy": (np.argmax(p.predictions, axis=1) == p.label_ids).mean().item()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", default="parity_out")
    args = parser.parse_args()

    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=80, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=2)
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        learning_rate=5e-4,
        per_device_train_batch_size=16,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
    )
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=ParityRows(64, 0),
        eval_dataset=ParityRows(32, 1),
        compute_metrics=accuracy,
        callbacks=[CompressionCallback(compression_manager)],
    )
    trainer.train()
    print(trainer.evaluate())
    trainer.save_model()
    reloaded = OptimizedModel.from_pretrained(
        args.out, model_class=DistilBertForSequenceClassification
    )  # neural-coder: wrapped
    print("reloaded layer:", type(reloaded.pre_classifier).__module__)
    with torch.no_grad():
        print("predictions:", reloaded(input_ids=ParityRows(4, 2).ids).logits.argmax(-1).tolist())
