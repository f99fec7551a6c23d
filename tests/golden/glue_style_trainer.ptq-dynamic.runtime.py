"""Sentence classification or regression with the Hugging Face Trainer, GLUE style.

One script serves both kinds of task: `--task regression` trains a one-output head
on a float target (an STS-B-like score), anything else a classifier. As in many
fine-tuning scripts, `compute_metrics` returns `mse` for regression and `accuracy`
(with `f1`) for classification, so the metric a run reports depends on its flags.
A tiny BERT built from a config and random token ids keep it self-contained.
"""

import argparse

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


class RandomPairs(torch.utils.data.Dataset):
    def __init__(self, n, regression, seq_len=12, vocab=64, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, seq_len), generator=g)
        score = (self.ids[:, :3].float().mean(dim=1) / vocab).clamp(0, 1)
        self.labels = score if regression else (score > 0.5).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones_like(self.ids[i]),
            "labels": self.labels[i],
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="classification", choices=["classification", "regression"])
    parser.add_argument("--output_dir", default="glue_out")
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    is_regression = args.task == "regression"

    def compute_metrics(p):
        preds = p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions
        if is_regression:
            preds = np.squeeze(preds)
            return {"mse": float(((preds - p.label_ids) ** 2).mean())}
        preds = np.argmax(preds, axis=1)
        accuracy = float((preds == p.label_ids).mean())
        positives = preds == 1
        precision = float((p.label_ids[positives] == 1).mean()) if positives.any() else 0.0
        return {"accuracy": accuracy, "precision": precision}

    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1 if is_regression else 2,
    )
    model = BertForSequenceClassification(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=16,
        learning_rate=2e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=RandomPairs(96, is_regression),
        eval_dataset=RandomPairs(48, is_regression, seed=1),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    quantized_model = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=trainer_eval_func(trainer, ["eval_mse", "eval_accuracy"]),
    )  # neural-coder
    use_quantized_model(trainer, quantized_model)  # neural-coder
    metrics = trainer.evaluate()
    print(f"eval metrics: {metrics}")
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
