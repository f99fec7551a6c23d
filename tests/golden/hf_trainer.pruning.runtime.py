"""Fine-tune a tiny transformer classifier with the Hugging Face Trainer (built from a config)."""
import numpy as np
import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback
from neural_coder.runtime.training import prepare_compression


class ToyReviews(torch.utils.data.Dataset):
    def __init__(self, size, length=12, vocab_size=120, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(2, vocab_size, (size, length), generator=g)
        self.labels = (self.input_ids[:, :3].sum(dim=1) > 3 * vocab_size // 2).long()

    def __len__(self):
        return self.input_ids.shape[0]

    def __getitem__(self, idx):
        return {
            "input_ids": self.input_ids[idx],
            "attention_mask": torch.ones_like(self.input_ids[idx]),
            "labels": self.labels[idx],
        }


def compute_metrics(eval_pred):
    predictions, labels = eval_pred
    return {"accuracy": float(np.mean(np.argmax(predictions, axis=-1) == labels))}


def main():
    config = DistilBertConfig(
        vocab_size=120,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        num_labels=2,
    )
    model = DistilBertForSequenceClassification(config)
    training_args = TrainingArguments(
        output_dir="distilbert_toy_out",
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=2e-3,
        report_to=[],
        save_strategy="no",
        logging_steps=4,
    )
    compression_manager = prepare_compression(
        model,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
    )  # neural-coder
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=ToyReviews(96),
        eval_dataset=ToyReviews(48, seed=3),
        compute_metrics=compute_metrics,
        callbacks=[CompressionCallback(compression_manager, prune_until=0.8)],
    )
    trainer.train()
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
