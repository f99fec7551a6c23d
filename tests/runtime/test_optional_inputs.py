"""A model whose forward takes an optional input it reads only when given
(`forward(self, x, targets=None)` with `if targets is not None: loss = ...`, nanoGPT's
style). FX tracing takes every input for a tensor: the graph would always compute the
loss branch, so a call without targets breaks, and QAT would even fake-quantize the
integer targets. Both quantization paths fall back to eager for such a model, and the
int8 model answers with and without targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neural_coder.runtime.config import PostTrainingQuantConfig, QuantizationAwareTrainingConfig
from neural_coder.runtime.quantization import fit
from neural_coder.runtime.training import prepare_compression


class TinyHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 32)
        self.mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
        self.head = nn.Linear(32, 10)

    def forward(self, x, targets=None):
        h = self.proj(x)
        logits = self.head(h + self.mlp(h))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(4, 6, 16), torch.randint(0, 10, (4, 6))


def test_qat_trains_with_targets_and_the_int8_model_runs_without():
    torch.manual_seed(0)
    model = TinyHead()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    for _ in range(3):
        x, y = _batch()
        _, loss = cm.model(x, y)  # under FX the integer targets would be fake-quantized
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    cm.callbacks.on_train_end()
    assert cm.summary["qat_path"] == "eager"
    assert "defaults to None" in cm.summary["qat_fallback_reason"]
    assert cm.summary["quantized_modules"] == 4
    x, y = _batch()
    logits, loss = cm.model(x)
    assert logits.shape == (4, 6, 10) and loss is None
    assert cm.model(x, y)[1] is not None


def test_static_ptq_keeps_the_optional_branch():
    torch.manual_seed(0)
    batches = [_batch() for _ in range(4)]
    q = fit(
        TinyHead().eval(),
        PostTrainingQuantConfig(approach="static"),
        calib_dataloader=torch.utils.data.DataLoader(batches, batch_size=None),
    )
    assert q is not None and q.q_config["path"] == "eager"
    x, y = batches[0]
    assert q(x)[1] is None
    assert q(x, y)[1] is not None
