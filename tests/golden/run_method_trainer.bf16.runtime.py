"""A small Trainer class whose `run()` loops over iterations until `max_iters`,
with callbacks for logging; nothing reads the model after `run()`."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import mix_precision
from neural_coder.runtime.config import MixedPrecisionConfig


class Trainer:
    def __init__(self, model, train_dataset, max_iters=6, batch_size=8, learning_rate=1e-2):
        self.model = model
        self.train_dataset = train_dataset
        self.max_iters = max_iters
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.callbacks = []
        self.iter_num = 0

    def add_callback(self, fn):
        self.callbacks.append(fn)

    def run(self):
        model = self.model
        optimizer = torch.optim.SGD(model.parameters(), lr=self.learning_rate)
        loader = DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True)
        model.train()
        data_iter = iter(loader)
        while True:
            try:
                batch = next(data_iter)
            except StopIteration:
                data_iter = iter(loader)
                batch = next(data_iter)
            x, y = batch
            loss = nn.functional.cross_entropy(model(x), y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for fn in self.callbacks:
                fn(self, loss.item())
            self.iter_num += 1
            if self.max_iters is not None and self.iter_num >= self.max_iters:
                break
        quantized_model = mix_precision.fit(model, MixedPrecisionConfig(), calib_dataloader=loader)  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
        if quantized_model is not None:  # neural-coder
            quantized_model.save("neural_coder_output/bf16")  # neural-coder


def main():
    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(64, 12), torch.randint(0, 3, (64,)))
    model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 3))
    trainer = Trainer(model, dataset)
    trainer.add_callback(lambda t, loss: print(f"iter {t.iter_num}: loss {loss:.4f}"))
    trainer.run()


if __name__ == "__main__":
    main()
