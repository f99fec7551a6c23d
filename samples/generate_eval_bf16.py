"""Inference only: a small BART loaded from its folder, scored by greedy generation on a
DataLoader of (source, target) pairs, then used to generate (the evaluation never calls the
model's forward itself, only `generate`)."""

import torch
from torch.utils.data import DataLoader
from transformers import BartConfig, BartForConditionalGeneration


def pairs(count=32):
    g = torch.Generator().manual_seed(0)
    sources = torch.randint(4, 60, (count, 10), generator=g)
    return [{"input_ids": s, "attention_mask": torch.ones_like(s), "labels": s[:5]} for s in sources]


def stack(rows):
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def token_accuracy(model, loader):
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in loader:
            out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 max_new_tokens=5, do_sample=False)
            predicted = out[:, 1:6]
            width = min(predicted.shape[1], batch["labels"].shape[1])
            hits += (predicted[:, :width] == batch["labels"][:, :width]).sum().item()
            total += batch["labels"].numel()
    return hits / total


def main():
    torch.manual_seed(0)
    config = BartConfig(vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32)
    BartForConditionalGeneration(config).save_pretrained("bart_folder")
    model = BartForConditionalGeneration.from_pretrained("bart_folder")
    loader = DataLoader(pairs(), batch_size=8, collate_fn=stack)
    print("token accuracy", token_accuracy(model, loader))
    print("generated", model.generate(torch.randint(4, 60, (1, 10)), max_new_tokens=6).tolist())


if __name__ == "__main__":
    main()
