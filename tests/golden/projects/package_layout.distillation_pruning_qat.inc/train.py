"""Training entry point of a project whose helpers live in the utils package."""

import argparse

import torch
from torch import nn
from utils.data import get_dataloaders
from utils.train_utils import train_epoch, validate
import copy
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


class Classifier(nn.Module):
    def __init__(self, in_features=20, hidden=64, classes=2):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.out(x)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=25)
    parser.add_argument("--lr", type=float, default=0.01)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(0)
    train_loader, val_loader = get_dataloaders(args.batch_size)
    model = Classifier()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
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
                end_step=max(
                    1, int(0.8 * (len(range(1, args.epochs + 1)) * len(train_loader)))
                ),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(1, args.epochs + 1):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_loss = train_epoch(
            epoch,
            model,
            train_loader,
            criterion,
            optimizer,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        accuracy = validate(model, val_loader)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, val accuracy {accuracy:.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), "classifier.pt")


if __name__ == "__main__":
    main()
