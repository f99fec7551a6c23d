"""Distillation in the styles of other model domains (found by probing VAE, UNet,
detection, triplet and tabular scripts):

- a binary / multi-label criterion (BCE) or a metric-learning one (triplet, cosine
  embedding) is distilled by MSE, as a regression is: a KL over softmax saw a `(batch,)`
  logit as one distribution over the batch and a one-wide one as a one-class
  distribution (always 0); the criterion is also found inside a loss function of the
  file (`loss_function(recon, x, mu, logvar)`, a `def criterion` handed to the train
  function);
- a model whose call returns its own losses (torchvision detection's
  `loss_dict = model(images, targets)`) is refused for distillation with the reason; the
  rewritten script crashed in the runtime ('no logits tensor');
- a torchvision segmentation output read as `output["out"]` is followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status

LOOP = """import torch
import torch.nn.functional as F
{prelude}
model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
loader = [(torch.rand(8, 12), torch.rand(8))] * 4


def train(model, loader, optimizer, criterion):
    for xb, yb in loader:
        optimizer.zero_grad()
        {step}
        loss.backward()
        optimizer.step()


for epoch in range(2):
    train(model, loader, optimizer, criterion)
"""

BCE_MODULE = LOOP.format(
    prelude="criterion = torch.nn.BCEWithLogitsLoss()",
    step="loss = criterion(model(xb).squeeze(-1), yb)",
)
BCE_IN_A_LOSS_FUNCTION = LOOP.format(
    prelude="def criterion(logits, target):\n"
    "    probs = torch.sigmoid(logits)\n"
    "    dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)\n"
    "    return F.binary_cross_entropy_with_logits(logits, target) + dice\n",
    step="out = model(xb)\n        loss = criterion(out.squeeze(-1), yb)",
)
RECONSTRUCTION_FUNCTION = LOOP.format(
    prelude="criterion = None\n\n"
    "def loss_function(recon, x, mu, logvar):\n"
    "    bce = F.binary_cross_entropy(recon, x, reduction='sum')\n"
    "    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n",
    step="out = model(xb)\n"
    "        loss = loss_function(out.sigmoid().squeeze(-1), yb, out.mean(), out.std())",
)
TRIPLET_IN_ONE_STATEMENT = LOOP.format(
    prelude="criterion = torch.nn.TripletMarginLoss(margin=1.0)",
    step="emb_a, emb_p, emb_n = model(xb), model(xb + 0.1), model(xb.flip(0))\n"
    "        loss = criterion(emb_a, emb_p, emb_n)",
)
SUMMED_TERMS = LOOP.format(
    prelude="criterion = None",
    step="out = model(xb)\n"
    "        recon = F.mse_loss(out.squeeze(-1), yb, reduction='sum')\n"
    "        kld = out.pow(2).sum()\n"
    "        loss = (recon + 0.5 * kld) / xb.size(0)",
)
TRIPLET = LOOP.format(
    prelude="criterion = torch.nn.TripletMarginLoss(margin=1.0)",
    step="emb_a = model(xb)\n        emb_p = model(xb + 0.1)\n        emb_n = model(xb.flip(0))\n"
    "        loss = criterion(emb_a, emb_p, emb_n)",
)
CE_AND_BCE = LOOP.format(
    prelude="def criterion(logits, target):\n"
    "    return F.cross_entropy(logits, target.long()) + F.binary_cross_entropy_with_logits(\n"
    "        logits[:, 0], target\n    )\n",
    step="out = model(xb)\n        loss = criterion(out, yb)",
)


def _rewrite(text: str) -> tuple[str, list[str]]:
    options = build_options("distillation", None, {}, {"distillation": {"teacher": "copy"}})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.placed


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (BCE_MODULE, "a binary criterion (torch.nn.BCEWithLogitsLoss)"),
        (BCE_IN_A_LOSS_FUNCTION, "a binary criterion"),
        (RECONSTRUCTION_FUNCTION, "a binary criterion (torch.nn.functional.binary_cross_entropy)"),
        (SUMMED_TERMS, "a regression criterion (torch.nn.functional.mse_loss)"),
        (TRIPLET, "an embedding criterion (torch.nn.TripletMarginLoss)"),
    ],
    ids=["bce-module", "bce-in-criterion-def", "vae-loss-function", "summed-terms", "triplet"],
)
def test_binary_and_embedding_criteria_are_distilled_by_mse(text, kind):
    assert (
        'loss_types=["CE", "KL"]'
        in _rewrite(BCE_MODULE.replace("BCEWithLogits", "CrossEntropy"))[0]
    )
    out, placed = _rewrite(text)
    assert 'loss_types=["MSE", "MSE"]' in out
    assert any(kind in p for p in placed), placed


def test_a_loss_that_also_uses_a_cross_entropy_keeps_the_kl_default():
    out, placed = _rewrite(CE_AND_BCE)
    assert 'loss_types=["CE", "KL"]' in out
    assert not any("MSE" in p for p in placed), placed


DETECTION = """import torch


class Detector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 3)

    def forward(self, images, targets=None):
        logits = self.head(torch.stack(images))
        labels = torch.stack([t["labels"] for t in targets])
        return {{"loss_classifier": torch.nn.functional.cross_entropy(logits, labels)}}


model = Detector()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
data_loader = [([torch.randn(4)] * 2, [{{"labels": torch.tensor(0)}}] * 2)] * 3
for epoch in range(2):
    for images, targets in data_loader:
        loss_dict = model(images, targets)
        {loss}
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
"""


@pytest.mark.parametrize(
    "loss",
    [
        "losses = sum(loss for loss in loss_dict.values())",
        "losses = sum(loss_dict.values())",
        "losses = sum(v for k, v in loss_dict.items() if k.startswith('loss'))",
        'losses = loss_dict["loss_classifier"] + 0.5 * loss_dict["loss_box_reg"]',
    ],
)
def test_a_model_that_returns_its_losses_is_refused_for_distillation(loss):
    options = build_options("distillation", None, {}, {"distillation": {"teacher": "copy"}})
    with pytest.raises(AnalysisError, match="holds the model's own losses") as refused:
        rewrite_source(Path("s.py"), DETECTION.format(loss=loss), options)
    assert refused.value.line == 21
    assert "--approach pruning or qat" in (refused.value.hint or "")
    # the other approaches still rewrite it
    out, report = rewrite_source(
        Path("s.py"), DETECTION.format(loss=loss), build_options("qat", None, {}, {})
    )
    assert report.status is Status.TRANSFORMED, report


SEGMENTATION = """import torch
import torch.nn.functional as F


class Seg(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x):
        return {"out": self.conv(x)}


model = Seg()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
data_loader = [(torch.randn(2, 3, 8, 8), torch.rand(2, 1, 8, 8).round())] * 3
for epoch in range(2):
    for image, target in data_loader:
        output = model(image)
        loss = F.binary_cross_entropy_with_logits(output["out"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_a_segmentation_output_read_as_out_is_distilled():
    out, placed = _rewrite(SEGMENTATION)
    assert "on_after_compute_loss(image, output, loss)" in out
    assert 'loss_types=["MSE", "MSE"]' in out
    assert 'model(image)["out"]' not in out


def test_a_call_read_as_out_is_followed():
    text = SEGMENTATION.replace(
        'output = model(image)\n        loss = F.binary_cross_entropy_with_logits(output["out"], target)',
        'loss = F.binary_cross_entropy_with_logits(model(image)["out"], target)',
    )
    out, _ = _rewrite(text)
    assert "outputs = model(image)" in out
    assert 'F.binary_cross_entropy_with_logits(outputs["out"], target)' in out


TWO_VIEWS = """import torch
import torch.nn.functional as F


class SimCLR(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(8, 8)
        self.projector = torch.nn.Linear(8, 4)

    def forward(self, x):
        h = self.encoder(x)
        return h, self.projector(h)


model = SimCLR()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loader = [torch.randn(6, 8)] * 3
for epoch in range(2):
    for images in loader:
        {views}
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        loss = F.cross_entropy(z @ z.t(), torch.arange(12).roll(6))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


@pytest.mark.parametrize("unpacked", ["_, z1", "(_, z1)", "[_, z1]"])
def test_an_output_unpacked_again_by_the_second_view_is_kept_for_the_hook(unpacked):
    # `_, z2 = model(x2)` binds `_` anew before the loss: the hook handed the teacher's
    # output on the first view the student's on the second
    views = f"{unpacked} = model(images + 0.1)\n        {unpacked.replace('1', '2')} = model(images.flip(0))"
    out, placed = _rewrite(TWO_VIEWS.format(views=views))
    assert f"{unpacked} = model(images + 0.1)\n        student_output = _  # neural-coder" in out
    assert "on_after_compute_loss(images+0.1,student_output,loss)" in "".join(out.split())


@pytest.mark.parametrize(
    "drawn", ["augment(images)", "images + 0.1 * torch.randn_like(images)", "augment(images).to(0)"]
)
def test_an_input_drawn_in_the_model_call_is_drawn_once_for_both_models(drawn):
    # the hook evaluated `augment(images)` again: the teacher saw another random view
    text = "def augment(x):\n    return x + torch.randn_like(x)\n\n" + TWO_VIEWS
    out, placed = _rewrite(
        text.format(views=f"h1, z1 = model({drawn})\n        h2, z2 = model(images)")
    )
    assert f"model_inputs = {drawn}  # neural-coder\n        h1, z1 = model(model_inputs)\n" in out
    assert "on_after_compute_loss(model_inputs,h1,loss)" in "".join(out.split())


def test_an_input_converted_only_is_handed_as_it_is():
    out, _ = _rewrite(
        TWO_VIEWS.format(
            views="h1, z1 = model(images.float().view(6, 8))\n        h2, z2 = model(images)"
        )
    )
    assert "model_inputs" not in out
    assert "on_after_compute_loss(images.float().view(6,8),h1,loss)" in "".join(out.split())


def test_three_calls_in_one_statement_pair_the_first_with_its_name():
    # refused before: "the model call is not assigned to a name before the loss"
    out, placed = _rewrite(TRIPLET_IN_ONE_STATEMENT)
    assert "on_after_compute_loss(xb,emb_a,loss)" in "".join(out.split())
    assert 'loss_types=["MSE", "MSE"]' in out
