# A small image classifier trained for a few epochs: the script a recipe file drives
# (neural-coder optimize recipe_cnn_train.py --recipe recipes/agp_group_lasso.yaml).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.recipes import RecipeConfig
from neural_coder.runtime.training import prepare_compression

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
teacher_model = copy.deepcopy(model)  # neural-coder
compression_manager = prepare_compression(
    model,
    RecipeConfig(
        "recipes/multishot.yaml",
        teacher_model=teacher_model,
        optimizer=optimizer,
        epochs=num_epochs,
    ),
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder
model = compression_manager.model  # neural-coder

for epoch in range(num_epochs):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    model.train()
    for step, (x, y) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(step)  # neural-coder
        logits = model(x)
        loss = criterion(logits, y)
        loss = compression_manager.callbacks.on_after_compute_loss(x, logits, loss)  # neural-coder
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder
    print(f"epoch {epoch}: loss {loss.item():.4f}")
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

model.eval()
with torch.no_grad():
    accuracy = (model(images).argmax(1) == labels).float().mean().item()
print(f"accuracy {accuracy:.3f}")
torch.save(model.state_dict(), "small_cnn.pt")
