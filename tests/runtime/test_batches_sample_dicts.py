"""Batches that are lists of per-sample dicts (detectron2's `batched_inputs`, a loader
whose collate returns the list): a model whose forward cannot take the dicts' keys as
keywords gets the list whole, for calibration, bf16 measurement and benchmarks."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from neural_coder.runtime import quantization
from neural_coder.runtime.batches import call_model, forward_inputs
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.model import Model
from neural_coder.runtime.quant import get_backend


class ListOfDictsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, batched_inputs: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        return list(self.fc(torch.stack([x["image"] for x in batched_inputs])))


class KeywordNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(image)


def samples(n: int = 4) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.randn(8), "label": torch.tensor(i % 2)} for i in range(n)]


def test_a_list_of_dicts_the_model_takes_whole_is_one_argument() -> None:
    batch = samples()
    inputs = forward_inputs(batch, ListOfDictsNet())
    assert isinstance(inputs, tuple) and inputs[0] is batch
    assert len(call_model(ListOfDictsNet(), inputs)) == 4


def test_dicts_whose_keys_the_forward_takes_stay_keyword_inputs() -> None:
    row = {"image": torch.randn(3, 8), "label": torch.zeros(3)}
    assert forward_inputs([row], KeywordNet()) is row  # a 1-item list: its item, as before
    keywords = forward_inputs(row, ListOfDictsNet())  # a dict batch: its inputs
    assert list(keywords) == ["image"] and keywords["image"] is row["image"]


def test_static_quantization_calibrates_on_lists_of_dicts() -> None:
    torch.manual_seed(0)
    loader = DataLoader(samples(16), batch_size=4, collate_fn=lambda rows: rows)
    model = ListOfDictsNet().eval()
    result = quantization.fit(
        model, PostTrainingQuantConfig(approach="static"), calib_dataloader=loader
    )
    assert isinstance(result, Model) and result.runs_int8_on_cpu
    assert get_backend().count_quantized_modules(result.model) == 1
    batch = next(iter(loader))
    with torch.no_grad():
        expected = torch.stack(model(batch))
        got = torch.stack(result(batch))
    # calibrated scales: the int8 outputs follow the float ones (uncalibrated would not)
    assert (got - expected).abs().max() < 0.1 * expected.abs().max()
