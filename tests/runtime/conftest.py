"""Helpers shared by the runtime tests: tiny models and data, and a clean summary env."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyMLP(nn.Module):
    """8 -> 16 -> 16 -> 4: small enough for a few CPU steps in a test."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.fc2(self.act(self.fc1(x)))))


def tiny_batches(
    n: int = 4, batch: int = 8, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 8, generator=g), torch.randint(0, 4, (batch,), generator=g))
        for _ in range(n)
    ]


@pytest.fixture
def tiny_mlp() -> TinyMLP:
    torch.manual_seed(0)
    return TinyMLP()


@pytest.fixture(autouse=True)
def _no_summary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write to a summary file the person running them configured."""
    monkeypatch.delenv("NEURAL_CODER_SUMMARY", raising=False)
