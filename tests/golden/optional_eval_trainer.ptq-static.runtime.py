"""Causal-LM fine-tuning with the Hugging Face Trainer, the evaluation split optional.

As in supervised fine-tuning scripts of trainer libraries, the Trainer is given an
`eval_dataset` only when the run evaluates (`--eval_strategy` other than "no", the
default); training is followed by `trainer.save_model`. A tiny GPT-2 built from a
config and random token ids keep it self-contained.
"""

import argparse

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


class RandomText(torch.utils.data.Dataset):
    def __init__(self, n, seq_len=16, vocab=64, seed=0):
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(1, vocab // 2, (n, 1), generator=g)
        self.ids = (start + torch.arange(seq_len)) % vocab  # a learnable sequence

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", default="sft_out")
    parser.add_argument("--eval_strategy", default="no", choices=["no", "epoch"])
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()

    config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        eval_strategy=args.eval_strategy,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    dataset = {"train": RandomText(96), "test": RandomText(32, seed=1)}
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["test"] if training_args.eval_strategy != "no" else None,
    )
    trainer.train()
    quantized_model = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=(
            trainer.get_eval_dataloader()
            if trainer.eval_dataset is not None
            else trainer.get_train_dataloader()
        ),
        eval_func=(
            trainer_eval_func(trainer, "eval_loss") if trainer.eval_dataset is not None else None
        ),
    )  # neural-coder
    use_quantized_model(trainer, quantized_model)  # neural-coder
    trainer.save_model(args.output_dir)
    print(f"saved to {args.output_dir}")


if __name__ == "__main__":
    main()
