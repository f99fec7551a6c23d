"""A transformers model trained in a hand-written loop, the loss read from model(**batch).loss."""
import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    get_linear_schedule_with_warmup,
)
import copy
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


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
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        [
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (num_train_epochs * len(train_dataloader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(num_train_epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        for step, batch in enumerate(train_dataloader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder
            outputs = model(**batch)
            loss = outputs.loss
            loss = compression_manager.callbacks.on_after_compute_loss(batch, outputs, loss)  # neural-coder
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            lr_scheduler.step()
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: last loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    model.save_pretrained("bert_custom_loop_out")


if __name__ == "__main__":
    main()
