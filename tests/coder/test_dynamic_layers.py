"""ptq-dynamic converts Linear, recurrent and embedding layers: a convolution-only model
of the file (fast-neural-style's TransformerNet) is refused with the approach that
converts it; a model with such a layer, or built from layers of another module (not read),
goes through."""

from __future__ import annotations

import pytest

from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

SCRIPT = """import math
import torch
import torch.nn as nn
class ConvBlock(nn.Module):
    def __init__(self, c_in, c_out, upsample=None):
        super().__init__()
        self.upsample = upsample  # a setting, not a module built elsewhere
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(c_in, c_out, 3)
        self.scale = math.sqrt(c_out)
    def forward(self, x):
        return torch.relu(self.conv(self.pad(x)))
class StyleNet(nn.Module):
    def __init__(self):
        super().__init__()
        blocks = [ConvBlock(3, 8), ConvBlock(8, 3)]
        self.blocks = nn.Sequential(*blocks){extra}
    def forward(self, x):
        return self.blocks(x)
model = StyleNet()
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
for step in range(2):
    for x in [torch.rand(2, 3, 8, 8)]:
        optimizer.zero_grad()
        loss = (model(x) - x).pow(2).mean()
        loss.backward()
        optimizer.step()
torch.save(model.state_dict(), "style.pt")
"""

CONV_ONLY = SCRIPT.replace("{extra}", "")


def test_a_convolution_only_model_is_refused_for_ptq_dynamic(tmp_path):
    path = write(tmp_path, CONV_ONLY)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic")
    assert result.exit_code == 1, result.output
    assert "StyleNet (line 13) has none (Conv2d, ReflectionPad2d, Sequential)" in result.output
    assert "--approach ptq-static" in result.output
    assert_untouched(path, CONV_ONLY)


@pytest.mark.parametrize(
    "extra",
    [
        "\n        self.head = nn.Linear(3, 3)",
        "\n        import torchvision\n        self.backbone = torchvision.models.resnet18()",
    ],
    ids=["linear", "imported"],
)
def test_a_model_with_a_linear_or_an_unread_layer_goes_through(tmp_path, extra):
    source = SCRIPT.replace("{extra}", extra)
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "quantization.fit(" in path.read_text()


def test_a_wrapper_of_a_model_built_elsewhere_goes_through(tmp_path):
    source = CONV_ONLY.replace(
        "    def __init__(self):\n        super().__init__()\n        blocks",
        "    def __init__(self, backbone=None):\n        super().__init__()\n"
        "        self.backbone = backbone\n        blocks",
    )
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic", "--no-backup")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("wrapper", ["Projector", "utils.Projector"], ids=["own", "imported"])
def test_a_convolution_only_model_wrapped_again_under_its_name_goes_through(tmp_path, wrapper):
    """`model = StyleNet()` then `model = Projector(model, ...)` (self-supervised scripts:
    a backbone, then backbone + projection head): the fit quantizes the wrapped model."""
    source = CONV_ONLY.replace(
        "model = StyleNet()\n",
        "class Projector(nn.Module):\n"
        "    def __init__(self, body, dim):\n"
        "        super().__init__()\n"
        "        self.body, self.head = body, nn.Linear(dim, dim)\n"
        "    def forward(self, x):\n"
        "        return self.body(x) + self.head(x.transpose(1, 3)).transpose(1, 3)\n"
        f"model = StyleNet()\nmodel = {wrapper}(model, 3)\n",
    )
    if wrapper.startswith("utils."):
        source = "import utils\n" + source
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "quantization.fit(" in path.read_text()


LOGISTIC = """import torch
import torch.nn as nn
x, y = torch.randn(32, 20), torch.randint(0, 3, (32,))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
MODEL
for xb, yb in loader:
    print((model(xb).argmax(1) == yb).float().mean().item())
"""


@pytest.mark.parametrize(
    ("build", "said"),
    [
        ("model = nn.Linear(20, 3)", "model is one layer itself (nn.Linear at line 5)"),
        ("model = torch.nn.LSTM(20, 3)", "model is one layer itself (torch.nn.LSTM at line 5)"),
        (
            "model = nn.Sequential(nn.Conv1d(1, 1, 3), nn.ReLU())",
            "model, nn.Sequential(nn.Conv1d(1, 1, 3), nn.ReLU()) at line 5, has none "
            "(Conv1d, ReLU)",
        ),
    ],
    ids=["linear", "lstm", "conv-sequential"],
)
def test_a_torch_nn_model_with_nothing_dynamic_quantization_converts_is_refused(
    tmp_path, build, said
):
    source = LOGISTIC.replace("MODEL", build)
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "ptq-dynamic")
    assert result.exit_code == 1, result.output
    assert said in " ".join(result.output.split()) and "--approach ptq-static" in result.output
    assert_untouched(path, source)


def test_a_sequential_holding_one_linear_goes_through(tmp_path):
    path = write(tmp_path, LOGISTIC.replace("MODEL", "model = nn.Sequential(nn.Linear(20, 3))"))
    result = run_cli("optimize", path, "--approach", "ptq-dynamic", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "quantization.fit(" in path.read_text()
