"""Fine-tuning script in the style of the transformers `run_*_no_trainer.py` examples:
the model comes from `from_pretrained` when a checkpoint is named and from
`from_config` otherwise (built in a helper), the loss is read straight off the
model call (`model(**batch).loss`), gradients are clipped, the learning rate
warms up, and an `evaluate()` helper reports accuracy after each epoch."""

import argparse
import math

import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    get_scheduler,
)
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fine-tune a sequence classifier")
    parser.add_argument("--model_name_or_path", default=None, help="checkpoint; a fresh tiny BERT when omitted")
    parser.add_argument("--num_train_epochs", type=int, default=2)
    parser.add_argument("--per_device_train_batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--max_grad_norm", type=float, default=1.0)
    parser.add_argument("--output_dir", default="hf_conditional_out")
    return parser.parse_args(argv)


def load_model(args, num_labels):
    if args.model_name_or_path:
        model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path, num_labels=num_labels)
    else:
        config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, num_labels=num_labels)
        model = AutoModelForSequenceClassification.from_config(config)
    return model


def make_loaders(batch_size):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 100, (256, 16), generator=g)
    labels = (ids[:, 0] > 50).long()
    rows = [{"input_ids": i, "attention_mask": torch.ones_like(i), "labels": y} for i, y in zip(ids, labels)]
    train = DataLoader(rows[:192], batch_size=batch_size, shuffle=True, generator=g)
    evaluation = DataLoader(rows[192:], batch_size=32)
    return train, evaluation


@torch.no_grad()
def evaluate(model, dataloader):
    model.eval()
    correct = total = 0
    for batch in dataloader:
        predictions = model(**batch).logits.argmax(dim=-1)
        correct += (predictions == batch["labels"]).sum().item()
        total += batch["labels"].numel()
    return correct / total


def main():
    args = parse_args()
    torch.manual_seed(0)
    train_dataloader, eval_dataloader = make_loaders(args.per_device_train_batch_size)
    model = load_model(args, num_labels=2)

    no_decay = ["bias", "LayerNorm.weight"]
    grouped = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(grouped, lr=args.learning_rate)
    max_train_steps = args.num_train_epochs * math.ceil(len(train_dataloader))
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=2, num_training_steps=max_train_steps)
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder

    for epoch in range(args.num_train_epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        total_loss = 0.0
        for batch in train_dataloader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            outputs = model(**batch)  # neural-coder
            loss = outputs.loss
            loss = compression_manager.callbacks.on_after_compute_loss(batch, outputs, loss)  # neural-coder
            total_loss += loss.item()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            lr_scheduler.step()
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        accuracy = evaluate(model, eval_dataloader)
        print(f"epoch {epoch}: loss {total_loss / len(train_dataloader):.4f} accuracy {accuracy:.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    model.save_pretrained(args.output_dir)


if __name__ == "__main__":
    main()
