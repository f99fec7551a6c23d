"""Fine-tune with a Trainer that builds the model from a model id or path, as TRL's
trainers do (`SFTTrainer(model="org/name", ...)`): the script never holds the model."""
import argparse
import os

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback


class ModelIdTrainer(Trainer):
    def __init__(self, model, *args, **kwargs):
        if isinstance(model, str):
            model = AutoModelForSequenceClassification.from_pretrained(model)
        super().__init__(model, *args, **kwargs)


class ToyTickets(torch.utils.data.Dataset):
    def __init__(self, size, length=10, vocab_size=100, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(2, vocab_size, (size, length), generator=g)
        self.labels = (self.input_ids[:, -2:].sum(dim=1) > vocab_size).long()

    def __len__(self):
        return self.input_ids.shape[0]

    def __getitem__(self, idx):
        return {
            "input_ids": self.input_ids[idx],
            "attention_mask": torch.ones_like(self.input_ids[idx]),
            "labels": self.labels[idx],
        }


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


def local_checkpoint(path):
    """Stand-in for a hub download: a tiny checkpoint written once to `path`."""
    if not os.path.isdir(path):
        config = DistilBertConfig(
            vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=2
        )
        torch.manual_seed(0)
        DistilBertForSequenceClassification(config).save_pretrained(path)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name_or_path", default="tiny-distilbert-tickets")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    local_checkpoint(args.model_name_or_path)
    training_args = TrainingArguments(
        output_dir="tickets_out",
        num_train_epochs=args.epochs,
        per_device_train_batch_size=16,
        learning_rate=2e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    compression_callback = CompressionCallback(
        configs=[
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=1,
            ),
            QuantizationAwareTrainingConfig(),
        ],
        prune_until=0.8,
    )  # neural-coder
    trainer = ModelIdTrainer(
        model=args.model_name_or_path,
        args=training_args,
        train_dataset=ToyTickets(96),
        eval_dataset=ToyTickets(48, seed=5),
        compute_metrics=compute_metrics,
        callbacks=[compression_callback],
    )
    trainer.train()
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
