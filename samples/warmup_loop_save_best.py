"""Plain PyTorch fine-tuning of a Hugging Face classifier: `outputs = model(**batch)`,
`outputs.loss`, a linear warmup schedule, gradient clipping, and the best epoch on the dev
set saved with `save_pretrained` inside the epoch loop. A tiny ELECTRA from a config."""

import argparse

import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import (
    ElectraConfig,
    ElectraForSequenceClassification,
    get_linear_schedule_with_warmup,
)


def collate(rows):
    ids = torch.stack([r[0] for r in rows])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.stack([r[1] for r in rows]),
    }


def build_loader(n, seed, shuffle):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (n, 12), generator=g)
    labels = (ids[:, 2] > 30).long()
    return DataLoader(TensorDataset(ids, labels), batch_size=8, shuffle=shuffle, collate_fn=collate)


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**batch).logits
        correct += (logits.argmax(-1) == batch["labels"]).sum().item()
        total += batch["labels"].size(0)
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--warmup_ratio", type=float, default=0.1)
    parser.add_argument("--output_dir", default="electra_out")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = ElectraConfig(
        vocab_size=64,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
    )
    model = ElectraForSequenceClassification(config).to(device)
    train_loader = build_loader(64, 0, True)
    dev_loader = build_loader(32, 1, False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    total_steps = len(train_loader) * args.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.warmup_ratio * total_steps), total_steps
    )
    best = 0.0
    for epoch in range(args.epochs):
        model.train()
        for step, batch in enumerate(train_loader):
            batch = {k: v.to(device) for k, v in batch.items()}
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        acc = evaluate(model, dev_loader, device)
        print(f"epoch {epoch} dev accuracy {acc:.3f}")
        if acc >= best:
            best = acc
            model.save_pretrained(args.output_dir)
    print(f"best {best:.3f}")


if __name__ == "__main__":
    main()
