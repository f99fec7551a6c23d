"""Batches of per-sample images (torchvision detection's `tuple(zip(*batch))` collate)
reach a model that takes the images as one list."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from neural_coder.runtime.batches import call_model, forward_inputs
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.quantization import fit


class ListDetector(nn.Module):
    """A detector in torchvision's style: `forward(images, targets=None)`."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        assert isinstance(images, list) and targets is None, "images must come as one list"
        feats = [self.backbone(img.unsqueeze(0)).mean(dim=(2, 3)) for img in images]
        return [{"scores": self.head(f)} for f in feats]


class UnannotatedDetector(ListDetector):
    def forward(self, images, targets=None):  # noqa: D102
        return super().forward(images, targets)


def detection_loader(batch_size: int) -> DataLoader:
    samples = [(torch.rand(3, 8, 8), {"boxes": torch.rand(1, 4)}) for _ in range(6)]
    return DataLoader(samples, batch_size=batch_size, collate_fn=lambda b: tuple(zip(*b)))


def test_images_go_in_as_one_list_when_the_forward_declares_a_list():
    batch = next(iter(detection_loader(2)))
    inputs = forward_inputs(batch, ListDetector())
    assert isinstance(inputs, tuple) and len(inputs) == 1 and len(inputs[0]) == 2
    out = call_model(ListDetector(), inputs)
    assert len(out) == 2


def test_images_go_in_as_one_list_when_there_are_more_than_the_forward_takes():
    batch = next(iter(detection_loader(3)))
    inputs = forward_inputs(batch, UnannotatedDetector())
    assert len(inputs) == 1 and len(inputs[0]) == 3


def test_a_tuple_of_inputs_for_a_forward_of_several_tensors_stays_spread():
    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return x * mask

    batch = ((torch.ones(2, 3), torch.zeros(2, 3)), torch.ones(2))
    inputs = forward_inputs(batch, TwoInputs())
    assert len(inputs) == 2 and inputs[0].shape == (2, 3)


def test_static_fit_calibrates_a_list_detector_on_its_loader():
    model = ListDetector().eval()
    q = fit(model, PostTrainingQuantConfig(), calib_dataloader=detection_loader(2))
    assert q is not None
    kinds = {type(m).__module__ for m in q.model.modules()}
    assert any("quantized" in k for k in kinds), kinds
