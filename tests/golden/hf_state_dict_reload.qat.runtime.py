"""Token classification with a transformers class in a plain loop, the loss computed from
`outputs.logits` with ignore_index; the weights saved with torch.save and loaded back into a
fresh instance of the class built from the model's config, which is then evaluated."""

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import DistilBertConfig, DistilBertForTokenClassification
from neural_coder.runtime import structure_for
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression

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
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(2):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for i, batch in enumerate(train_dl):
            compression_manager.callbacks.on_step_begin(i)  # neural-coder
            optim.zero_grad()
            outputs = model(input_ids=batch["input_ids"])
            loss = criterion(outputs.logits.view(-1, NUM_LABELS), batch["labels"].view(-1))
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optim.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: tag accuracy {tag_accuracy(model, test_dl):.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), "tagger.pt")
    fresh = DistilBertForTokenClassification(model.config)
    loaded_state = torch.load("tagger.pt")  # neural-coder
    fresh, loaded_state = structure_for(loaded_state, fresh)  # neural-coder
    fresh.load_state_dict(loaded_state)
    print("reloaded layer:", type(fresh.classifier).__module__)
    print(f"reloaded tag accuracy {tag_accuracy(fresh, test_dl):.3f}")


if __name__ == "__main__":
    main()
