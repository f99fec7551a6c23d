"""A small language model trained inside main(), the way single-file GPT trainers are
organised: batches are cut from fixed train / val token tensors, `estimate_loss()` is
nested in main() and reads its `model`, averaging the loss of a few batches of each
split into a dict keyed by split, and the weights are saved after the step loop."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from neural_compressor import mix_precision
from neural_compressor.config import AccuracyCriterion, MixedPrecisionConfig, TuningCriterion


class ResidualMLPLM(nn.Module):
    def __init__(self, vocab, width=48):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.head = nn.Linear(width, vocab)

    def forward(self, idx, targets=None):
        hidden = self.embed(idx)
        logits = self.head(hidden + self.mlp(hidden))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--out", default="lm.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    vocab, block = 24, 12
    tokens = torch.randint(0, vocab, (3000,))
    cut = int(0.8 * len(tokens))
    splits = {"train": tokens[:cut], "val": tokens[cut:]}

    def batch_at(split, i, size=8):
        data = splits[split]
        starts = (torch.arange(size) * 37 + i * 11) % (len(data) - block - 1)
        x = torch.stack([data[s : s + block] for s in starts])
        y = torch.stack([data[s + 1 : s + block + 1] for s in starts])
        return x, y

    model = ResidualMLPLM(vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ["train", "val"]:
            losses = torch.zeros(4)
            for k in range(4):
                _, loss = model(*batch_at(split, k))
                losses[k] = loss.item()
            out[split] = losses.mean()
        model.train()
        return out

    for step in range(args.steps):
        if step % args.eval_every == 0:
            losses = estimate_loss()
            print(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        x, y = batch_at("train", step)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    def evaluate_candidate(candidate):  # neural-coder
        nonlocal model  # neural-coder
        trained_model, model = model, candidate  # neural-coder
        try:  # neural-coder
            return float(estimate_loss()["val"])  # neural-coder
        finally:
            model = trained_model
    quantized_model = mix_precision.fit(
        model,
        MixedPrecisionConfig(
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=evaluate_candidate,
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
