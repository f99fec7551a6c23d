"""Transfer learning in the style of the fine-tuning tutorials: a small convolutional
network whose weights come from an earlier run (a checkpoint, when one exists), every
weight frozen in a loop, then a new head for the new classes that trains alone.
The freeze does not stop QAT: the new head trains, so QAT quantizes the model while the
head learns on the quantized features. Pruning is refused: it leaves the classifier head
out, and the frozen weights get no gradient to score."""

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression


class SmallConvNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def make_loaders():
    labels = torch.randint(0, 2, (96,))
    images = torch.randn(96, 3, 16, 16) + labels.view(-1, 1, 1, 1).float()
    train = TensorDataset(images[:64], labels[:64])
    val = TensorDataset(images[64:], labels[64:])
    return DataLoader(train, batch_size=16, shuffle=True), DataLoader(val, batch_size=16)


def train_head(model, loader, criterion, optimizer, epochs, compression_manager):
    model.train()
    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        total_loss = 0.0
        for images, labels in loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            total_loss += loss.item()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {total_loss / len(loader):.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    correct = total = 0
    for images, labels in loader:
        correct += (model(images).argmax(dim=1) == labels).sum().item()
        total += labels.numel()
    return correct / total


def main():
    torch.manual_seed(0)
    train_loader, val_loader = make_loaders()
    model = SmallConvNet()
    if os.path.exists("pretrained_convnet.pt"):
        model.load_state_dict(torch.load("pretrained_convnet.pt", weights_only=True))
    for param in model.parameters():
        param.requires_grad = False
    model.classifier = nn.Linear(16, 2)

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.classifier.parameters(), lr=0.5, momentum=0.9)
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    train_head(
        model,
        train_loader,
        criterion,
        optimizer,
        epochs=int(os.environ.get("EPOCHS", "3")),
        compression_manager=compression_manager,
    )  # neural-coder: wrapped
    compression_manager.callbacks.on_train_end()  # neural-coder
    print(f"val accuracy {accuracy(model, val_loader):.3f}")
    torch.save(model.state_dict(), "finetuned_convnet.pt")


if __name__ == "__main__":
    main()
