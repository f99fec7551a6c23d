"""Summarization-style fine-tuning in the style of transformers' run_summarization.py: a
`Seq2SeqTrainer` with `predict_with_generate=True` scores generated ids with its own
compute_metrics; after training the script saves the model, evaluates it and predicts on
a test split. A tiny BART built from a config (no download); the task: copy the first
four tokens of the input."""

import argparse

import numpy as np
import torch
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


class CopyTask(torch.utils.data.Dataset):
    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.src = torch.randint(3, 30, (n, 8), generator=g)

    def __len__(self):
        return len(self.src)

    def __getitem__(self, i):
        s = self.src[i]
        return {"input_ids": s, "attention_mask": torch.ones_like(s), "labels": s[:4]}


def compute_metrics(eval_preds):
    preds, labels = eval_preds
    if isinstance(preds, tuple):
        preds = preds[0]
    labels = np.where(labels != -100, labels, 1)
    n = min(preds.shape[1], labels.shape[1])
    exact = (preds[:, :n] == labels[:, :n]).mean()
    return {"token_match": float(exact)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", default="s2s_out")
    parser.add_argument("--num_train_epochs", type=float, default=1)
    args = parser.parse_args()

    config = BartConfig(
        vocab_size=32,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    model = BartForConditionalGeneration(config)
    training_args = Seq2SeqTrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        predict_with_generate=True,
        generation_max_length=6,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=CopyTask(64),
        eval_dataset=CopyTask(16, seed=1),
        compute_metrics=compute_metrics,
    )
    train_result = trainer.train()
    quantized_model = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=trainer.get_eval_dataloader(),
        eval_func=trainer_eval_func(trainer, "eval_token_match"),
    )  # neural-coder
    use_quantized_model(trainer, quantized_model)  # neural-coder
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    metrics = trainer.evaluate(max_length=6, num_beams=1, metric_key_prefix="eval")
    print("eval", metrics)
    predict_results = trainer.predict(CopyTask(16, seed=2), metric_key_prefix="predict")
    print("predict", predict_results.metrics)


if __name__ == "__main__":
    main()
