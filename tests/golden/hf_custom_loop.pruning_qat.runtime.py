import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, BertConfig, get_linear_schedule_with_warmup
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


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
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    num_epochs = 2
    lr_scheduler = get_linear_schedule_with_warmup(optimizer, 0, num_epochs * len(train_dataloader))

    model.train()
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (num_epochs * len(train_dataloader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(num_epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        for step, batch in enumerate(train_dataloader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            lr_scheduler.step()
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    model.save_pretrained("hf_custom_loop_out")


if __name__ == "__main__":
    main()
