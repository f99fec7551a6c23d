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
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.pipeline import fit_pipeline
from neural_coder.runtime.training import PipelineConfig, prepare_compression


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
    compression_manager = prepare_compression(
        model,
        PipelineConfig(
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=1,
                ),
                QuantizationAwareTrainingConfig(),
            ],
            epochs=(config["num_epochs"]),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )
    fit_pipeline(compression_manager, steps_per_epoch=len(train_dataloader))  # neural-coder

    for epoch in range(config["num_epochs"]):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for step, batch in enumerate(train_dataloader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder
            with accelerator.accumulate(model):
                outputs = model(**batch)
                loss = outputs.loss
                accelerator.backward(loss)
                compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                optimizer.step()
                compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                lr_scheduler.step()
                optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder

        model.eval()
        correct = total = 0
        for batch in eval_dataloader:
            with torch.no_grad():
                outputs = model(**batch)
            predictions, references = accelerator.gather_for_metrics((outputs.logits.argmax(-1), batch["labels"]))
            correct += (predictions == references).sum().item()
            total += references.numel()
        accelerator.print(f"epoch {epoch}: accuracy {correct / total:.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    compression_manager.save("neural_coder_output/pruning+qat")  # neural-coder


def main():
    config = {"lr": 2e-3, "num_epochs": 3, "seed": 42, "batch_size": 16, "gradient_accumulation_steps": 2}
    training_function(config)


if __name__ == "__main__":
    main()
