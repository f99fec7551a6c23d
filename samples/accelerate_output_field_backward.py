"""Causal-LM fine-tune with accelerate where the backward reads the loss field of the
model's output (`accelerator.backward(outputs.loss)`), never bound to a name of its own."""

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import GPT2Config, GPT2LMHeadModel


def token_blocks(count, seed):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": ids, "labels": ids.clone()} for ids in torch.randint(0, 48, (count, 12), generator=g)]


def main():
    accelerator = Accelerator(cpu=True)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=48, n_positions=16, n_embd=32, n_layer=2, n_head=2))
    train_dataloader = DataLoader(token_blocks(48, 0), batch_size=8, shuffle=True)
    eval_dataloader = DataLoader(token_blocks(16, 1), batch_size=8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    for epoch in range(2):
        model.train()
        for batch in train_dataloader:
            outputs = model(**batch)
            accelerator.backward(outputs.loss)
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        losses = []
        for batch in eval_dataloader:
            with torch.no_grad():
                losses.append(accelerator.gather_for_metrics(model(**batch).loss.reshape(1)))
        accelerator.print(f"epoch {epoch}: eval loss {torch.cat(losses).mean().item():.4f}")
    accelerator.unwrap_model(model).save_pretrained("lm_out", save_function=accelerator.save)


if __name__ == "__main__":
    main()
