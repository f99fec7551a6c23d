"""NER-style token classification with the Hugging Face Trainer: checkpoints per epoch,
early stopping on the tagging accuracy, the best checkpoint reloaded at the end
(`load_best_model_at_end`) and saved. A tiny DistilBERT built from a config and
pre-tokenised examples (lists of dicts) keep it self-contained."""

import numpy as np
from transformers import (
    DistilBertConfig,
    DistilBertForTokenClassification,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback
from neural_coder.runtime.training import prepare_compression

label_list = ["O", "B-X", "I-X"]


def make_examples(n, seed):
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        ids = rng.integers(4, 60, size=10).tolist()
        tags = [1 if t > 50 else (2 if t > 45 else 0) for t in ids]
        tags[0] = -100
        examples.append({"input_ids": ids, "attention_mask": [1] * 10, "labels": tags})
    return examples


def compute_metrics(p):
    predictions, labels = p
    predictions = np.argmax(predictions, axis=2)
    mask = labels != -100
    return {"accuracy": float((predictions[mask] == labels[mask]).mean())}


def main():
    config = DistilBertConfig(
        vocab_size=64,
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=32,
        num_labels=len(label_list),
    )
    model = DistilBertForTokenClassification(config)
    train_examples = make_examples(64, 0)
    eval_examples = make_examples(16, 1)
    training_args = TrainingArguments(
        output_dir="ner_out",
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        save_total_limit=1,
        num_train_epochs=3,
        learning_rate=3e-3,
        per_device_train_batch_size=16,
        report_to=[],
        use_cpu=True,
    )
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_examples,
        eval_dataset=eval_examples,
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2), CompressionCallback(compression_manager)],
    )
    trainer.train()
    trainer.save_model()
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)


if __name__ == "__main__":
    main()
