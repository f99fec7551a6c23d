"""Sentence-embedding training on paraphrase pairs in the style of sentence-transformers
scripts: the loader collates rows into a dict of `anchor` / `positive` token ids, the
encoder embeds each side in its own call (`model(batch["anchor"])`), and the loss is
in-batch negatives (multiple negatives ranking). Random token ids."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader


class Encoder(nn.Module):
    def __init__(self, vocab=40, dim=24):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, input_ids):
        return F.normalize(self.proj(self.embed(input_ids).mean(1)), dim=-1)


def collate(rows):
    return {
        "anchor": torch.stack([r["anchor"] for r in rows]),
        "positive": torch.stack([r["positive"] for r in rows]),
    }


def paraphrase_rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 40, (n, 10), generator=g)
    return [{"anchor": row, "positive": row.flip(0)} for row in ids]


torch.manual_seed(0)
model = Encoder()
loader = DataLoader(paraphrase_rows(64, 0), batch_size=8, shuffle=True, collate_fn=collate)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
for epoch in range(2):
    for batch in loader:
        anchors = model(batch["anchor"])
        positives = model(batch["positive"])
        loss = F.cross_entropy(anchors @ positives.T * 20.0, torch.arange(len(anchors)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
