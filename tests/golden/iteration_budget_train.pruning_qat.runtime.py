"""Iteration-based training over an endless data stream, in the style of detection codebases.

The data loader never ends (an IterableDataset that samples forever, so it has no
`len()`); the loop zips it with `range(start_iter, max_iter)`, which is what bounds
the run. The model returns a dict of losses in training mode and is evaluated on a
held-out set after the last iteration, then saved. Synthetic data keeps it
self-contained.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class EndlessBoxes(IterableDataset):
    def __init__(self, seed=0):
        self.seed = seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            x = torch.randn(16, generator=g)
            yield x, (x[:4] * 2).clone(), int(x[0] > 0)


class TinyDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.box_head = nn.Linear(64, 4)
        self.cls_head = nn.Linear(64, 2)

    def forward(self, x, boxes=None, labels=None):
        features = self.backbone(x)
        pred_boxes, logits = self.box_head(features), self.cls_head(features)
        if self.training:
            return {"loss_box": F.smooth_l1_loss(pred_boxes, boxes), "loss_cls": F.cross_entropy(logits, labels)}
        return pred_boxes, logits


def do_test(model, batches=8):
    model.eval()
    correct = total = 0
    stream = iter(DataLoader(EndlessBoxes(seed=1), batch_size=32))
    with torch.no_grad():
        for _ in range(batches):
            x, _, labels = next(stream)
            _, logits = model(x)
            correct += (logits.argmax(1) == labels).sum().item()
            total += len(labels)
    model.train()
    return correct / total


def do_train(args, model, compression_manager):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start_iter, max_iter = 0, args.max_iter
    data_loader = DataLoader(EndlessBoxes(), batch_size=32)
    fit_pruning_schedules(
        compression_manager.callbacks, max(1, int(0.8 * (len(range(start_iter, max_iter)))))
    )  # neural-coder
    for (x, boxes, labels), iteration in zip(data_loader, range(start_iter, max_iter)):
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        loss_dict = model(x, boxes, labels)
        losses = sum(loss_dict.values())
        optimizer.zero_grad()
        losses.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        if (iteration + 1) % 20 == 0:
            print(f"iter {iteration + 1}: loss {losses.item():.4f}")
        compression_manager.callbacks.on_step_end()  # neural-coder


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-iter", type=int, default=60)
    parser.add_argument("--out", default="detector.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TinyDetector()
    compression_manager = prepare_compression(
        model,
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
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    do_train(args, model, compression_manager=compression_manager)
    compression_manager.callbacks.on_train_end()  # neural-coder
    print(f"accuracy {do_test(model):.4f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
