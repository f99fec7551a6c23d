"""Score a classifier that carries LoRA adapters (peft) on a held-out set.

Post-training quantization is refused for such a model (it would act on the
frozen base weights under the adapters); `auto` lists the refusal.
"""

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def accuracy(model, loader):
    model.eval()
    right = seen = 0
    with torch.no_grad():
        for x, y in loader:
            right += (model(x).argmax(-1) == y).sum().item()
            seen += len(y)
    return right / seen


def main():
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    y = torch.randint(0, 3, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = MLP()
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["fc1"]))
    score = accuracy(model, loader)
    print(f"accuracy {score:.3f}")


if __name__ == "__main__":
    main()
