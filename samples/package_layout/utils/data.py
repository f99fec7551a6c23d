import torch
from torch.utils.data import DataLoader, TensorDataset


def get_dataloaders(batch_size, n_train=200, n_val=50):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(n_train + n_val, 20, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = TensorDataset(x[:n_train], y[:n_train])
    val = TensorDataset(x[n_train:], y[n_train:])
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(val, batch_size=batch_size),
    )
