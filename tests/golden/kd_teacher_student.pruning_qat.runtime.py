"""Knowledge distillation from a trained teacher CNN into a small student.

The teacher is built from its class and its trained weights are loaded; it runs
in eval mode under torch.no_grad() next to the student in every step, and the
loss mixes the student's cross-entropy with a KL term to the teacher's softened
outputs. Only the student's parameters are optimized, and only the student is
saved.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class TeacherNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class StudentNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(F.relu(self.conv(x))), 1))


def loss_fn_kd(outputs, labels, teacher_outputs, alpha, temperature):
    soft = F.kl_div(
        F.log_softmax(outputs / temperature, dim=1),
        F.softmax(teacher_outputs / temperature, dim=1),
        reduction="batchmean",
    )
    return soft * (alpha * temperature * temperature) + F.cross_entropy(outputs, labels) * (1.0 - alpha)


def train_kd(student, teacher, optimizer, loader, args, compression_manager):
    student.train()
    teacher.eval()
    for images, labels in loader:
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        output_batch = student(images)
        with torch.no_grad():
            teacher_batch = teacher(images)
        loss = loss_fn_kd(output_batch, labels, teacher_batch, args.alpha, args.temperature)
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder


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
    parser.add_argument("--teacher_checkpoint", default="teacher_best.pth")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--temperature", type=float, default=4.0)
    args = parser.parse_args()
    torch.manual_seed(0)

    images, labels = torch.randn(96, 3, 16, 16), torch.randint(0, 4, (96,))
    train_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[64:], labels[64:]), batch_size=16)

    teacher = TeacherNet()
    teacher.load_state_dict(torch.load(args.teacher_checkpoint, weights_only=True))
    student = StudentNet()
    optimizer = torch.optim.SGD(student.parameters(), lr=args.lr, momentum=0.9)
    compression_manager = prepare_compression(
        student,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (args.epochs * len(train_loader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    student = compression_manager.model  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_kd(
            student, teacher, optimizer, train_loader, args, compression_manager=compression_manager
        )  # neural-coder: wrapped
        print(f"epoch {epoch}: student accuracy {evaluate(student, val_loader):.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(student.state_dict(), "student_best.pth")


if __name__ == "__main__":
    main()
