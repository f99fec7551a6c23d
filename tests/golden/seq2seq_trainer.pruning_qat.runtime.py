"""Sequence-to-sequence fine-tuning in the style of transformers' run_translation.py:
an encoder-decoder (a tiny T5 built from a config, no download) trained by a
`Seq2SeqTrainer`, evaluated for its loss, and saved. The task: reverse the input."""

import argparse

import torch
from transformers import (
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    T5Config,
    T5ForConditionalGeneration,
)
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback
from neural_coder.runtime.training import prepare_compression


class ReversedPairs(torch.utils.data.Dataset):
    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.source = torch.randint(2, 40, (n, 6), generator=g)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        s = self.source[i]
        return {"input_ids": s, "attention_mask": torch.ones_like(s), "labels": s.flip(0)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", default="seq2seq_out")
    parser.add_argument("--num_train_epochs", type=float, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    model = T5ForConditionalGeneration(config)
    training_args = Seq2SeqTrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        predict_with_generate=False,
        use_cpu=True,
    )
    compression_manager = prepare_compression(
        model,
        [
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
    )  # neural-coder
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=ReversedPairs(64),
        eval_dataset=ReversedPairs(16, seed=1),
        callbacks=[CompressionCallback(compression_manager, prune_until=0.8)],
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(f"eval loss {metrics['eval_loss']:.4f}")
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
