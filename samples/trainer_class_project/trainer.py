"""A small trainer class, in the style of minGPT-like projects: configuration in,
`run()` trains, an optional callback after each iteration."""

from collections import defaultdict

import torch
from torch.utils.data import DataLoader


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
        for epoch in range(config.epochs):
            for x, y in train_loader:
                logits = self.model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
                self.loss = loss
                self.model.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_norm_clip)
                self.optimizer.step()
                self.iter_num += 1
                self.trigger_callbacks("on_batch_end")
