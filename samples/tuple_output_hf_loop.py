"""A Hugging Face classifier trained in a plain loop with `return_dict=False`: the loss and
the logits are unpacked from the model call (`loss, logits = model(..., labels=...)`)."""

import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForSequenceClassification


def accuracy(model, loader):
    model.eval()
    hits = 0
    with torch.no_grad():
        for input_ids, mask, labels in loader:
            logits = model(input_ids, attention_mask=mask, return_dict=False)[0]
            hits += (logits.argmax(-1) == labels).sum().item()
    return hits / len(loader.dataset)


def main():
    torch.manual_seed(3)
    ids = torch.randint(1, 60, (96, 10))
    data = TensorDataset(ids, torch.ones_like(ids), (ids[:, -1] > 30).long())
    train_loader = DataLoader(torch.utils.data.Subset(data, range(72)), batch_size=12, shuffle=True)
    val_loader = DataLoader(torch.utils.data.Subset(data, range(72, 96)), batch_size=12)
    model = BertForSequenceClassification(
        BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for epoch in range(2):
        model.train()
        for step, (input_ids, mask, labels) in enumerate(train_loader):
            loss, logits = model(input_ids, attention_mask=mask, labels=labels, return_dict=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: accuracy {accuracy(model, val_loader):.3f}")
    model.save_pretrained("tuple_out")


if __name__ == "__main__":
    main()
