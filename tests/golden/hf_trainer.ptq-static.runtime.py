"""Fine-tune a tiny transformer classifier with the Hugging Face Trainer (built from a config)."""
import numpy as np
import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


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
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=ToyReviews(96),
        eval_dataset=ToyReviews(48, seed=3),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    quantized_model = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=trainer.get_eval_dataloader(),
        eval_func=trainer_eval_func(trainer, "eval_accuracy"),
    )  # neural-coder
    use_quantized_model(trainer, quantized_model)  # neural-coder
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
