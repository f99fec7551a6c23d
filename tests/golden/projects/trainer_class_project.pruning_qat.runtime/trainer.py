"""A small trainer class, in the style of minGPT-like projects: configuration in,
`run()` trains, an optional callback after each iteration."""

from collections import defaultdict

import torch
from torch.utils.data import DataLoader
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class Trainer:
    def __init__(self, config, model, train_dataset):
        self.config = config
        self.model = model
        self.train_dataset = train_dataset
        self.callbacks = defaultdict(list)
        self.iter_num = 0

    def add_callback(self, onevent, callback):
        self.callbacks[onevent].append(callback)

    def trigger_callbacks(self, onevent):
        for callback in self.callbacks.get(onevent, []):
            callback(self)

    def run(self):
        config = self.config
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate)
        train_loader = DataLoader(
            self.train_dataset, batch_size=config.batch_size, shuffle=True, drop_last=True
        )
        self.model.train()
        self.compression_manager = prepare_compression(
            self.model,
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=max(1, int(0.8 * (config.epochs * len(train_loader)))),
                ),
                QuantizationAwareTrainingConfig(),
            ],
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        self.model = self.compression_manager.model  # neural-coder
        for epoch in range(config.epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            for x, y in train_loader:
                self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
                logits = self.model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
                self.loss = loss
                self.model.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_norm_clip)
                self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                self.optimizer.step()
                self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                self.iter_num += 1
                self.trigger_callbacks("on_batch_end")
                self.compression_manager.callbacks.on_step_end()  # neural-coder
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder
