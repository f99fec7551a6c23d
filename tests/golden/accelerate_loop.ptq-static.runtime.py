"""Sequence classification with Hugging Face accelerate, in the style of
accelerate's nlp_example.py: everything goes through `accelerator.prepare`,
gradients accumulate inside `accelerator.accumulate(model)`."""

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    get_linear_schedule_with_warmup,
)
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig


def collate(rows):
    ids = torch.stack([r[0] for r in rows])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.stack([r[1] for r in rows])}


def get_dataloaders(batch_size):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 100, (256, 16), generator=g)
    labels = (ids[:, 0] > 50).long()
    rows = list(zip(ids, labels))
    train = DataLoader(rows[:192], batch_size=batch_size, shuffle=True, collate_fn=collate, generator=g)
    evaluation = DataLoader(rows[192:], batch_size=32, collate_fn=collate)
    return train, evaluation


def training_function(config):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=config["gradient_accumulation_steps"])
    torch.manual_seed(config["seed"])
    train_dataloader, eval_dataloader = get_dataloaders(config["batch_size"])
    model_config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(model_config)
    optimizer = torch.optim.AdamW(params=model.parameters(), lr=config["lr"])
    lr_scheduler = get_linear_schedule_with_warmup(
        optimizer=optimizer,
        num_warmup_steps=0,
        num_training_steps=len(train_dataloader) * config["num_epochs"],
    )
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )

    for epoch in range(config["num_epochs"]):
        model.train()
        for step, batch in enumerate(train_dataloader):
            with accelerator.accumulate(model):
                outputs = model(**batch)
                loss = outputs.loss
                accelerator.backward(loss)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
        if epoch == config["num_epochs"] - 1:  # neural-coder
            quantized_model = quantization.fit(
                model,
                PostTrainingQuantConfig(approach="static", calibration_sampling_size=[100]),
                calib_dataloader=eval_dataloader,
            )  # neural-coder
            model = quantized_model if quantized_model is not None else model  # neural-coder
            if quantized_model is not None:  # neural-coder
                quantized_model.save("neural_coder_output/ptq-static")  # neural-coder

        model.eval()
        correct = total = 0
        for batch in eval_dataloader:
            with torch.no_grad():
                outputs = model(**batch)
            predictions, references = accelerator.gather_for_metrics((outputs.logits.argmax(-1), batch["labels"]))
            correct += (predictions == references).sum().item()
            total += references.numel()
        accelerator.print(f"epoch {epoch}: accuracy {correct / total:.4f}")


def main():
    config = {"lr": 2e-3, "num_epochs": 3, "seed": 42, "batch_size": 16, "gradient_accumulation_steps": 2}
    training_function(config)


if __name__ == "__main__":
    main()
