"""An MLP trained inside nn.DataParallel by a runner class; the bare model is saved through
`.module` and a fresh one from the same factory loads it for the test."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization, structure_for
from neural_coder.runtime.config import PostTrainingQuantConfig

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def build_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))


class Runner:
    def __init__(self, epochs=2):
        self.epochs = epochs
        features = torch.randn(96, 20)
        targets = torch.randint(0, 3, (96,))
        self.train_loader = DataLoader(TensorDataset(features, targets), batch_size=12, shuffle=True)
        self.test_loader = DataLoader(TensorDataset(features[:36], targets[:36]), batch_size=12)
        net = build_model().to(DEVICE)
        if torch.cuda.device_count() > 1:
            print("using", torch.cuda.device_count(), "GPUs")
        self.net = nn.DataParallel(net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.criterion = nn.CrossEntropyLoss()

    def train_epoch(self):
        self.net.train()
        total = 0.0
        for x, y in self.train_loader:
            x, y = x.to(DEVICE), y.to(DEVICE)
            self.optimizer.zero_grad()
            loss = self.criterion(self.net(x), y)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / len(self.train_loader)

    def fit(self):
        for epoch in range(self.epochs):
            print("epoch", epoch, "loss", self.train_epoch())
        quantized_model = quantization.fit(
            self.net.module,
            PostTrainingQuantConfig(approach="static", calibration_sampling_size=[100]),
            calib_dataloader=self.test_loader,
        )  # neural-coder
        self.net.module = quantized_model if quantized_model is not None else self.net.module  # neural-coder
        torch.save(self.net.module.state_dict(), "mlp.pt")


def test(path, loader):
    model = build_model()
    loaded_state = torch.load(path)  # neural-coder
    model, loaded_state = structure_for(loaded_state, model)  # neural-coder
    model.load_state_dict(loaded_state)
    model.eval()
    hits = 0
    with torch.no_grad():
        for x, y in loader:
            hits += (model(x).argmax(1) == y).sum().item()
    acc = hits / len(loader.dataset)
    print("test accuracy", acc)
    return acc


if __name__ == "__main__":
    runner = Runner()
    runner.fit()
    test("mlp.pt", runner.test_loader)
