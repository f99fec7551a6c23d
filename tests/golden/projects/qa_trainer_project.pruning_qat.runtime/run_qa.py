"""Extractive QA fine-tuning; the Trainer subclass lives in trainer_qa.py next to
this script, as in the transformers question-answering examples."""

import argparse

import torch
from trainer_qa import QuestionAnsweringTrainer
from transformers import AutoModelForQuestionAnswering, BertConfig, TrainingArguments
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback
from neural_coder.runtime.training import prepare_compression


class RandomSpans(torch.utils.data.Dataset):
    def __init__(self, size, length=16, vocab=64, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(1, vocab, (size, length), generator=generator)
        self.start = self.input_ids[:, 1] % (length // 2)

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, index):
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": torch.ones_like(self.input_ids[index]),
            "start_positions": self.start[index],
            "end_positions": self.start[index] + 1,
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name_or_path", default="")
    parser.add_argument("--output_dir", default="qa_output")
    args = parser.parse_args()

    torch.manual_seed(0)
    if args.model_name_or_path:
        model = AutoModelForQuestionAnswering.from_pretrained(args.model_name_or_path)
    else:
        config = BertConfig(
            vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=32,
        )
        model = AutoModelForQuestionAnswering.from_config(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=2,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        logging_steps=5,
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
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=training_args,
        train_dataset=RandomSpans(128),
        eval_dataset=RandomSpans(32, seed=1),
        callbacks=[CompressionCallback(compression_manager, prune_until=0.8)],
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(metrics)
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
