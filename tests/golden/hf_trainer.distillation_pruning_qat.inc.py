import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
import copy
from neural_coder.runtime.integrations.transformers import CompressionCallback, with_distillation
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


class RandomTextDataset(torch.utils.data.Dataset):
    def __init__(self, n, seq_len=16, vocab=100, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, seq_len), generator=g)
        self.labels = (self.ids[:, 0] > vocab // 2).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones_like(self.ids[i]),
            "labels": self.labels[i],
        }


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def main():
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    args = TrainingArguments(
        output_dir="hf_trainer_out",
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        logging_steps=5,
    )
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        [
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
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
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=RandomTextDataset(128),
        eval_dataset=RandomTextDataset(64, seed=1),
        compute_metrics=compute_metrics,
        callbacks=[CompressionCallback(compression_manager, prune_until=0.8)],
    )
    with_distillation(trainer, compression_manager)  # neural-coder
    trainer.train()
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
