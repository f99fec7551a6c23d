"""Contrastive sentence-embedding training in the style of sentence-transformers scripts:
an encoder (`BertModel`) with mean pooling, called only inside `encode(model, ids)`, and
an in-batch-negatives loss over the similarity matrix; the dev score is the mean cosine
similarity of paraphrase pairs. A tiny BERT from a config, random token ids."""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertModel, get_linear_schedule_with_warmup
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression


def mean_pooling(model_output, attention_mask):
    token_embeddings = model_output[0]
    mask = attention_mask.unsqueeze(-1).float()
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def make_loader(n, seed, shuffle):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(5, 60, (n, 10), generator=g)
    b = a.clone()
    b[:, -3:] = torch.randint(5, 60, (n, 3), generator=g)
    return DataLoader(TensorDataset(a, b), batch_size=8, shuffle=shuffle)


def encode(model, ids):
    mask = torch.ones_like(ids)
    return F.normalize(mean_pooling(model(input_ids=ids, attention_mask=mask), mask), dim=-1)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    scores = [F.cosine_similarity(encode(model, a), encode(model, b)).mean() for a, b in loader]
    return torch.stack(scores).mean().item()


def main():
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    model = BertModel(config)
    train_loader = make_loader(64, 0, True)
    dev_loader = make_loader(16, 1, False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    epochs = 2
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, epochs * len(train_loader))
    scale = 20.0
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for anchors, positives in train_loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            ea, ep = encode(model, anchors), encode(model, positives)
            logits = ea @ ep.T * scale
            loss = F.cross_entropy(logits, torch.arange(len(ea)))
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            scheduler.step()
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: dev cosine {evaluate(model, dev_loader):.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    model.save_pretrained("embed_out")


if __name__ == "__main__":
    main()
