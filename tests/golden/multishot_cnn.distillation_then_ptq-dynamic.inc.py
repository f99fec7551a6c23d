# A small image classifier trained for a few epochs, evaluated and saved: the sample for
# multi-shot pipelines (distillation, then pruning, then quantization, ...).
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, DistillationConfig, KnowledgeDistillationLossConfig, PostTrainingQuantConfig, TuningCriterion
from neural_compressor.training import prepare_compression


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.hidden = nn.Linear(32 * 16, 64)
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        x = self.features(x).flatten(1)
        return self.head(torch.relu(self.hidden(x)))


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.numel()
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="final_model.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    images = torch.randn(256, 3, 8, 8)
    labels = images.mean(dim=(2, 3)).argmax(1) % 4
    train_loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=32)

    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for step, (x, y) in enumerate(train_loader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder
            output = model(x)
            loss = criterion(output, y)
            loss = compression_manager.callbacks.on_after_compute_loss(x, output, loss)  # neural-coder
            optimizer.zero_grad()
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="dynamic",
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        eval_func=lambda candidate: float(evaluate(candidate, val_loader)),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    print("accuracy", evaluate(model, val_loader))
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
