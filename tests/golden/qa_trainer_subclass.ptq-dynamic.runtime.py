"""Fine-tuning for extractive question answering with a Trainer subclass, in the
style of the transformers examples (run_qa.py + trainer_qa.py).

The model comes from a checkpoint when one is given and is otherwise built from
a config; the Trainer subclass post-processes predictions in `evaluate`."""

import argparse

import torch
from transformers import (
    AutoModelForQuestionAnswering,
    BertConfig,
    Trainer,
    TrainingArguments,
)
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


class SpanDataset(torch.utils.data.Dataset):
    """Random token ids with the answer span at a position the first token encodes."""

    def __init__(self, n, seq_len=24, vocab=100, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, seq_len), generator=g)
        self.starts = self.ids[:, 0] % (seq_len // 2)
        self.ends = self.starts + 2

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones_like(self.ids[i]),
            "start_positions": self.starts[i],
            "end_positions": self.ends[i],
        }


class QuestionAnsweringTrainer(Trainer):
    def __init__(self, *args, post_process_function=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.post_process_function = post_process_function

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.post_process_function is not None:
            metrics = self.post_process_function(metrics)
        return metrics


def span_metrics(eval_pred):
    (start_logits, end_logits), (starts, ends) = eval_pred.predictions, eval_pred.label_ids
    start_ok = start_logits.argmax(-1) == starts
    end_ok = end_logits.argmax(-1) == ends
    return {"exact_match": float((start_ok & end_ok).mean()), "start_accuracy": float(start_ok.mean())}


def build_model(name_or_path):
    if name_or_path:
        return AutoModelForQuestionAnswering.from_pretrained(name_or_path)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return AutoModelForQuestionAnswering.from_config(config)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--output_dir", default="qa_out")
    parser.add_argument("--epochs", type=float, default=2)
    cli = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(cli.model_name_or_path)
    training_args = TrainingArguments(
        output_dir=cli.output_dir,
        num_train_epochs=cli.epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=2e-3,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
    )
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=training_args,
        train_dataset=SpanDataset(160),
        eval_dataset=SpanDataset(64, seed=1),
        compute_metrics=span_metrics,
        post_process_function=lambda metrics: {**metrics, "eval_checked": 1.0},
    )
    train_result = trainer.train()
    print("train loss", round(train_result.training_loss, 4))
    quantized_model = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=trainer_eval_func(trainer, "eval_exact_match"),
    )  # neural-coder
    use_quantized_model(trainer, quantized_model)  # neural-coder
    metrics = trainer.evaluate()
    print("eval", {k: round(v, 4) for k, v in metrics.items() if k.startswith("eval_")})
    trainer.save_model(cli.output_dir)


if __name__ == "__main__":
    main()
