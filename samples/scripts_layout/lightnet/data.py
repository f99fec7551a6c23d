import torch
from torch.utils.data import DataLoader, TensorDataset


def synthetic_loaders(batch_size: int = 16):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=generator)
    y = x[:, :4].argmax(dim=1)
    train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
    return train, val
