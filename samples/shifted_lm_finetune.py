"""Fine-tune a pretrained causal language model with accelerate and gradient accumulation.

The model returns its logits for every position; the step drops the last position
(`logits = logits[..., :-1, :]`, output n predicts token n+1) before the loss, and
hands `accelerator.backward` the loss divided by the accumulation steps.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset


class TinyCausalLM(nn.Module):
    def __init__(self, vocab_size=40, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.mix = nn.Linear(dim, dim)
        self.lm_head = nn.Linear(dim, vocab_size)

    def forward(self, input_ids, lm_head_chunk_size=0):
        hidden = torch.tanh(self.mix(self.embed(input_ids)))
        return self.lm_head(hidden)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="lm_pretrained.pt")
    parser.add_argument("--max_steps", type=int, default=8)
    parser.add_argument("--gradient_accumulation_iters", type=int, default=2)
    parser.add_argument("--out", default="lm_finetuned.pt")
    return parser.parse_args()


def main():
    args = parse_args()
    accelerator = Accelerator(cpu=True)
    model = TinyCausalLM()
    model.load_state_dict(torch.load(args.checkpoint))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    tokens = torch.randint(0, 40, (32, 12))
    loader = DataLoader(TensorDataset(tokens), batch_size=4, shuffle=True)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    model.train()
    iter_num = 0
    for (input_ids,) in loader:
        iter_num += 1
        targets = input_ids
        logits = model(input_ids, lm_head_chunk_size=128)
        # shift so that output n predicts token n+1
        logits = logits[..., :-1, :]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[..., 1:].reshape(-1))
        accelerator.backward(loss / args.gradient_accumulation_iters)
        if iter_num % args.gradient_accumulation_iters == 0:
            optimizer.step()
            optimizer.zero_grad()
        if iter_num >= args.max_steps:
            break

    accelerator.save(accelerator.unwrap_model(model).state_dict(), args.out)


if __name__ == "__main__":
    main()
