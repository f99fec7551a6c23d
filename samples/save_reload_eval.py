"""The beginners' tutorial layout: train a small image classifier, save its state dict,
build a fresh network, load the saved weights into it and measure its accuracy."""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = int(os.environ.get("EPOCHS", "2"))
PATH = os.environ.get("CHECKPOINT", "./classifier_net.pth")

generator = torch.Generator().manual_seed(0)
images = torch.randn(96, 3, 16, 16, generator=generator)
labels = (images.mean(dim=(1, 2, 3)) > 0).long()
trainloader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=8, shuffle=True)
testloader = DataLoader(TensorDataset(images[64:], labels[64:]), batch_size=8)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 8, 3)
        self.fc1 = nn.Linear(8 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

for epoch in range(EPOCHS):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, targets = data
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    print(f"[{epoch + 1}] loss: {running_loss / len(trainloader):.3f}")

print("Finished Training")
torch.save(net.state_dict(), PATH)

net = Net()
net.load_state_dict(torch.load(PATH))

correct = 0
total = 0
with torch.no_grad():
    for inputs, targets in testloader:
        outputs = net(inputs)
        _, predicted = torch.max(outputs, 1)
        total += targets.size(0)
        correct += (predicted == targets).sum().item()
print(f"Accuracy of the network on the test images: {100 * correct // total} %")
print("evaluated:", type(net.fc1).__module__ + "." + type(net.fc1).__name__)
