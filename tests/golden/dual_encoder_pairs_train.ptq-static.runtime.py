"""A dual encoder trained on (query, document) pairs in the style of retrieval
scripts: one module embeds both sides in a single call (`model(queries, docs)`), the
loss is in-batch negatives over the similarity matrix, and the loader yields only the
pairs (no labels). Random token ids; the second side is the first one reversed."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig


class DualEncoder(nn.Module):
    def __init__(self, vocab=40, dim=24):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.query_proj = nn.Linear(dim, dim)
        self.doc_proj = nn.Linear(dim, dim)

    def forward(self, query_ids, doc_ids):
        q = self.query_proj(self.embed(query_ids).mean(1))
        d = self.doc_proj(self.embed(doc_ids).mean(1))
        return F.normalize(q, dim=-1), F.normalize(d, dim=-1)


def pair_loader(n, seed, shuffle):
    g = torch.Generator().manual_seed(seed)
    queries = torch.randint(1, 40, (n, 10), generator=g)
    return DataLoader(TensorDataset(queries, queries.flip(1)), batch_size=8, shuffle=shuffle)


torch.manual_seed(0)
model = DualEncoder()
train_loader = pair_loader(64, 0, True)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
for epoch in range(2):
    model.train()
    for queries, docs in train_loader:
        q, d = model(queries, docs)
        loss = F.cross_entropy(q @ d.T * 20.0, torch.arange(len(q)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
quantized_model = quantization.fit(
    model,
    PostTrainingQuantConfig(approach="static", calibration_sampling_size=[100]),
    calib_dataloader=(((queries, docs),) for queries, docs in train_loader),
)  # neural-coder
model = quantized_model if quantized_model is not None else model  # neural-coder
if quantized_model is not None:  # neural-coder
    quantized_model.save("neural_coder_output/ptq-static")  # neural-coder
