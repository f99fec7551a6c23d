"""LoRA fine-tuning in the style of the PEFT examples: the base model gets adapters
with `get_peft_model`, only the adapters train, and `save_pretrained` writes the
adapters alone. Pruning and quantization refuse such a model (the base weights are
frozen); distillation works on it."""

import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, BertConfig


def collate(rows):
    ids = torch.stack([r[0] for r in rows])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.stack([r[1] for r in rows])}


def main():
    torch.manual_seed(0)
    ids = torch.randint(1, 100, (192, 16))
    labels = (ids[:, 0] > 50).long()
    train_dataloader = DataLoader(list(zip(ids, labels)), batch_size=16, shuffle=True, collate_fn=collate)

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                             target_modules=["query", "value"])
    model = get_peft_model(model, peft_config)
    model.print_trainable_parameters()

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    num_epochs = 2
    for epoch in range(num_epochs):
        model.train()
        for step, batch in enumerate(train_dataloader):
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        print(f"epoch {epoch}: loss {loss.item():.4f}")

    model.save_pretrained("peft_lora_out")


if __name__ == "__main__":
    main()
