import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.transformers import trainer_eval_func, use_quantized_model


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
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=RandomTextDataset(128),
        eval_dataset=RandomTextDataset(64, seed=1),
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
