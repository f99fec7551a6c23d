"""Task-specific distillation with a Trainer subclass that takes a teacher and mixes the
student's loss with a KL term at a temperature; the student is built by `model_init`, as
a hyperparameter search needs, and the final Trainer is built again under the same name
with the settings found."""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback


class DistillationTrainingArguments(TrainingArguments):
    def __init__(self, *args, alpha=0.5, temperature=2.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.temperature = temperature


class DistillationTrainer(Trainer):
    def __init__(self, *args, teacher_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher_model
        self._move_model_to_device(self.teacher, self.model.device)
        self.teacher.eval()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        student_outputs = model(**inputs)
        with torch.no_grad():
            teacher_outputs = self.teacher(**inputs)
        temperature = self.args.temperature
        soft = nn.KLDivLoss(reduction="batchmean")(
            F.log_softmax(student_outputs.logits / temperature, dim=-1),
            F.softmax(teacher_outputs.logits / temperature, dim=-1),
        ) * (temperature**2)
        loss = self.args.alpha * student_outputs.loss + (1.0 - self.args.alpha) * soft
        return (loss, student_outputs) if return_outputs else loss


class Reviews(torch.utils.data.Dataset):
    def __init__(self, size, length=12, vocab_size=100, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(2, vocab_size, (size, length), generator=g)
        self.labels = (self.input_ids[:, :3].sum(dim=1) > 1.5 * vocab_size).long()

    def __len__(self):
        return self.input_ids.shape[0]

    def __getitem__(self, idx):
        return {"input_ids": self.input_ids[idx], "labels": self.labels[idx]}


def compute_metrics(eval_pred):
    predictions, labels = eval_pred
    return {"accuracy": float((np.argmax(predictions, axis=1) == labels).mean())}


def local_checkpoint(path, hidden_size, layers):
    """Stand-in for a hub download: a tiny checkpoint written once to `path`."""
    if not os.path.isdir(path):
        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=100,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden_size,
            max_position_embeddings=32,
        )
        BertForSequenceClassification(config).save_pretrained(path)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher_id", default="tiny-bert-teacher")
    parser.add_argument("--student_id", default="tiny-bert-student")
    parser.add_argument("--hp_search", action="store_true")
    args = parser.parse_args()
    local_checkpoint(args.teacher_id, 64, 2)
    local_checkpoint(args.student_id, 32, 2)

    id2label = {0: "negative", 1: "positive"}
    label2id = {label: i for i, label in id2label.items()}
    teacher_model = AutoModelForSequenceClassification.from_pretrained(
        args.teacher_id, num_labels=2, id2label=id2label, label2id=label2id
    )

    def student_init():
        return AutoModelForSequenceClassification.from_pretrained(
            args.student_id, num_labels=2, id2label=id2label, label2id=label2id
        )

    training_args = DistillationTrainingArguments(
        output_dir="distilled",
        num_train_epochs=2,
        per_device_train_batch_size=16,
        learning_rate=2e-3,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        alpha=0.5,
        temperature=4.0,
    )
    if args.hp_search:
        trainer = DistillationTrainer(
            model_init=student_init,
            args=training_args,
            teacher_model=teacher_model,
            train_dataset=Reviews(64),
            eval_dataset=Reviews(32, seed=3),
            compute_metrics=compute_metrics,
        )

        def hp_space(trial):
            return {
                "alpha": trial.suggest_float("alpha", 0, 1),
                "temperature": trial.suggest_int("temperature", 2, 30),
            }

        best_run = trainer.hyperparameter_search(n_trials=4, direction="maximize", hp_space=hp_space)
        for k, v in best_run.hyperparameters.items():
            setattr(training_args, k, v)
    compression_callback = CompressionCallback(
        configs=WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
        prune_until=0.8,
    )  # neural-coder

    trainer = DistillationTrainer(
        model_init=student_init,
        args=training_args,
        teacher_model=teacher_model,
        train_dataset=Reviews(64),
        eval_dataset=Reviews(32, seed=3),
        compute_metrics=compute_metrics,
        callbacks=[compression_callback],
    )
    trainer.train()
    print(trainer.evaluate())
    trainer.save_model("distilled")


if __name__ == "__main__":
    main()
