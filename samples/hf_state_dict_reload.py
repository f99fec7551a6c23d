"""Token classification with a transformers class in a plain loop, the loss computed from
`outputs.logits` with ignore_index; the weights saved with torch.save and loaded back into a
fresh instance of the class built from the model's config, which is then evaluated."""

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import DistilBertConfig, DistilBertForTokenClassification

NUM_LABELS = 4


def tagged(count, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 90, (count, 16), generator=g)
    labels = ids % NUM_LABELS
    labels[:, 12:] = -100
    return [{"input_ids": i, "labels": t} for i, t in zip(ids, labels)]


def tag_accuracy(model, loader):
    model.eval()
    right = count = 0
    with torch.inference_mode():
        for batch in loader:
            predicted = model(input_ids=batch["input_ids"]).logits.argmax(-1)
            keep = batch["labels"] != -100
            right += (predicted[keep] == batch["labels"][keep]).sum().item()
            count += keep.sum().item()
    return right / count


def main():
    torch.manual_seed(0)
    model = DistilBertForTokenClassification(
        DistilBertConfig(vocab_size=90, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=NUM_LABELS)
    )
    train_dl = DataLoader(tagged(64, 0), batch_size=8, shuffle=True)
    test_dl = DataLoader(tagged(16, 1), batch_size=8)
    criterion = nn.CrossEntropyLoss(ignore_index=-100)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(2):
        model.train()
        for i, batch in enumerate(train_dl):
            optim.zero_grad()
            outputs = model(input_ids=batch["input_ids"])
            loss = criterion(outputs.logits.view(-1, NUM_LABELS), batch["labels"].view(-1))
            loss.backward()
            optim.step()
        print(f"epoch {epoch}: tag accuracy {tag_accuracy(model, test_dl):.3f}")
    torch.save(model.state_dict(), "tagger.pt")
    fresh = DistilBertForTokenClassification(model.config)
    fresh.load_state_dict(torch.load("tagger.pt"))
    print("reloaded layer:", type(fresh.classifier).__module__)
    print(f"reloaded tag accuracy {tag_accuracy(fresh, test_dl):.3f}")


if __name__ == "__main__":
    main()
