# A small image classifier trained for a few epochs: the script a recipe file drives
# (neural-coder optimize recipe_cnn_train.py --recipe recipes/agp_group_lasso.yaml).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
patterns = torch.randn(4, 1, 12, 12)
labels = torch.randint(0, 4, (256,))
images = patterns[labels] + 0.8 * torch.randn(256, 1, 12, 12)
loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.head(torch.relu(self.fc1(x.flatten(1))))


model = SmallCNN()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
num_epochs = 8

for epoch in range(num_epochs):
    model.train()
    for step, (x, y) in enumerate(loader):
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    accuracy = (model(images).argmax(1) == labels).float().mean().item()
print(f"accuracy {accuracy:.3f}")
torch.save(model.state_dict(), "small_cnn.pt")
