"""R-Drop regularisation with the Hugging Face Trainer: a Trainer subclass overrides
`training_step` to run the model twice (dropout differs) and adds the symmetric KL of the
two predictions to their cross-entropy. A tiny RoBERTa built from a config, random ids."""

import torch
import torch.nn.functional as F
from transformers import RobertaConfig, RobertaForSequenceClassification, Trainer, TrainingArguments


class Pairs(torch.utils.data.Dataset):
    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 60, (n, 12), generator=g)
        self.labels = (self.ids[:, 1] > 32).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(12, dtype=torch.long),
            "labels": self.labels[i],
        }


class RDropTrainer(Trainer):
    def __init__(self, *args, alpha=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def training_step(self, model, inputs, num_items_in_batch=None):
        model.train()
        inputs = self._prepare_inputs(inputs)
        out1 = model(**inputs)
        out2 = model(**inputs)
        ce = 0.5 * (out1.loss + out2.loss)
        p1, p2 = F.log_softmax(out1.logits, -1), F.log_softmax(out2.logits, -1)
        kl = 0.5 * (
            F.kl_div(p1, p2, log_target=True, reduction="batchmean")
            + F.kl_div(p2, p1, log_target=True, reduction="batchmean")
        )
        loss = ce + self.alpha * kl
        self.accelerator.backward(loss)
        return loss.detach()


def accuracy(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def main():
    config = RobertaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
        num_labels=2,
        pad_token_id=1,
    )
    model = RobertaForSequenceClassification(config)
    args = TrainingArguments(
        output_dir="rdrop_out",
        num_train_epochs=2,
        per_device_train_batch_size=16,
        learning_rate=2e-3,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    trainer = RDropTrainer(
        model=model,
        args=args,
        train_dataset=Pairs(64),
        eval_dataset=Pairs(32, 1),
        compute_metrics=accuracy,
        alpha=0.5,
    )
    trainer.train()
    print(trainer.evaluate())
    model.save_pretrained("rdrop_out/final")


if __name__ == "__main__":
    main()
