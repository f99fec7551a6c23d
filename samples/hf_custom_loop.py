"""A transformers model trained in a hand-written loop, the loss read from model(**batch).loss."""
import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    get_linear_schedule_with_warmup,
)


def collate_fn(examples):
    input_ids = torch.stack([e[0] for e in examples])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": torch.stack([e[1] for e in examples]),
    }


def main():
    torch.manual_seed(3)
    token_ids = torch.randint(1, 80, (160, 12))
    targets = (token_ids[:, -1] > 40).long()
    train_dataloader = DataLoader(list(zip(token_ids, targets)), batch_size=16, shuffle=True, collate_fn=collate_fn)

    config = BertConfig(vocab_size=80, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=48, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    num_train_epochs = 2
    lr_scheduler = get_linear_schedule_with_warmup(optimizer, 2, num_train_epochs * len(train_dataloader))

    model.train()
    for epoch in range(num_train_epochs):
        for step, batch in enumerate(train_dataloader):
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
        print(f"epoch {epoch}: last loss {loss.item():.4f}")

    model.save_pretrained("bert_custom_loop_out")


if __name__ == "__main__":
    main()
