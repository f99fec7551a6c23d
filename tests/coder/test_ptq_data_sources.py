"""Where a static PTQ finds its calibration loader and its model, in the shapes real
scripts use: a library helper named for loaders, a loader re-bound by
`fabric.setup_dataloaders(loader)`, held-out loaders first; and a model that a
function receives, found where a caller builds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

HEADER = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def score(model, loader):
    model.eval()
    with torch.no_grad():
        return sum(model(x).sum().item() for x, _ in loader)

"""


def rewrite(source: str, approach: str = "ptq-static") -> str:
    text, report = rewrite_source(Path("script.py"), source, build_options(approach, None, {}, {}))
    assert report.status is Status.TRANSFORMED
    again, second = rewrite_source(Path("script.py"), text, build_options(approach, None, {}, {}))
    assert second.status is Status.UNCHANGED and again == text  # a second run is a no-op
    return text


def refusal(source: str) -> str:
    with pytest.raises(NeuralCoderError) as refused:
        rewrite_source(Path("script.py"), source, build_options("ptq-static", None, {}, {}))
    return str(refused.value)


def test_library_helper_named_for_loaders_gives_the_held_out_one():
    source = HEADER + (
        "from mylib.data import build_dataloaders\n\n"
        "def main(cfg):\n"
        "    model = Net()\n"
        "    train_loader, eval_loader = build_dataloaders(cfg)\n"
        "    model.load_state_dict(torch.load(cfg.weights))\n"
        "    print(model(torch.randn(1, 4)))\n"
        "    torch.save(model.state_dict(), 'out.pt')\n"
    )
    assert "calib_dataloader=eval_loader" in rewrite(source)


def test_loader_re_bound_by_fabric_one_at_a_time():
    source = HEADER + (
        "def main(fabric, dataset):\n"
        "    model = Net()\n"
        "    loader = torch.utils.data.DataLoader(dataset, batch_size=4)\n"
        "    loader = fabric.setup_dataloaders(loader)\n"
        "    print(score(model, loader))\n"
    )
    text = rewrite(source)
    assert "calib_dataloader=loader" in text and "eval_func=lambda" in text


def test_image_reader_named_loader_is_no_data_loader():
    """torchvision's `default_loader(path)` reads one image: no calibration data."""
    source = HEADER + (
        "from torchvision.datasets.folder import default_loader\n\n"
        "def main(path):\n"
        "    model = Net()\n"
        "    image = default_loader(path)\n"
        "    print(model(torch.randn(1, 4)))\n"
        "    torch.save(model.state_dict(), 'out.pt')\n"
    )
    assert "no DataLoader is in reach" in refusal(source)


def test_model_passed_on_through_two_functions_is_quantized_where_it_is_built():
    """main() builds the model and hands it to run(), which hands it to score(): the fit
    goes in main(), before the call, calibrated with the loader main() receives."""
    source = HEADER + (
        "def run(model, loader):\n"
        "    return score(model, loader)\n\n"
        "def main(loader):\n"
        "    model = torch.hub.load('repo', 'net')\n"
        "    model.eval()\n"
        "    print(run(model, loader))\n\n"
        "main(torch.utils.data.DataLoader(range(8)))\n"
    )
    lines = rewrite(source).splitlines()
    fit = next(i for i, line in enumerate(lines) if "quantization.fit(" in line)
    call = next(i for i, line in enumerate(lines) if "print(run(model, loader))" in line)
    assert lines[fit].startswith("    quantized_model") and fit < call
    assert any("calib_dataloader=loader" in line for line in lines[fit:call])


BUILT_INSIDE = HEADER + (
    "from mylib.data import build_test_loader\n\n"
    "def do_test(cfg, model):\n"
    "    results = {{}}\n"
    "{rebind}"
    "    for name in cfg.test_sets:\n"
    "        data_loader = build_test_loader({args})\n"
    "        results[name] = {{'sum': score(model, data_loader)}}\n"
    "    return results\n\n"
    "def main(cfg):\n"
    "    model = Net()\n"
    "    model.load_state_dict(torch.load(cfg.weights))\n"
    "{before_test}"
    "    return do_test({call_args})\n"
)


@pytest.mark.parametrize(
    ("args", "call_args", "built"),
    [
        # detectron2's do_test: one loader per test set, the first one built at the fit
        ("cfg, name", "cfg, model", "build_test_loader(cfg, next(iter(cfg.test_sets)))"),
        # a parameter bound by keyword, a constant, a keyword argument of the builder
        (
            "cfg.data, name, batch_size=2",
            "model=model, cfg=cfg",
            "build_test_loader(cfg.data, next(iter(cfg.test_sets)), batch_size=2)",
        ),
    ],
)
def test_a_loader_the_evaluation_builds_inside_is_built_again_at_the_fit(args, call_args, built):
    """No loader in reach after training, but the evaluation builds its own inside from
    its parameters and a loop over one: the fit calls the same builder with the values
    the call passes in, the loop's first item for the loop's name."""
    source = BUILT_INSIDE.format(args=args, call_args=call_args, rebind="", before_test="")
    text = rewrite(source)
    fit = text[text.index("quantization.fit(") : text.index("return do_test")]
    assert f"calib_dataloader={built}" in " ".join(fit.split()).replace("( ", "(").replace(
        ", )", ")"
    ), fit


@pytest.mark.parametrize(
    ("rebind", "args", "before_test", "call_args"),
    [
        # the function re-binds the config before building: not the caller's value
        ("    cfg = cfg.clone()\n", "cfg, name", "", "cfg, model"),
        # an argument the caller computes only in the call
        ("", "cfg, name", "", "cfg.copy(), model"),
        # a local of the evaluation that is no parameter nor loop name
        ("    split = 'val'\n", "cfg, split", "", "cfg, model"),
        # the loop runs over a local of the evaluation (`names` means something else at
        # the fit)
        (
            "    names = cfg.test_sets[:1]\n",
            "cfg, name",
            "    names = ['x']\n",
            "cfg, model",
        ),
    ],
)
def test_a_loader_built_inside_from_values_out_of_reach_is_named_in_the_refusal(
    rebind, args, before_test, call_args
):
    """detectron2 style, where the values the builder takes cannot be had at the fit:
    refused, naming the loader built inside, with the way out."""
    source = BUILT_INSIDE.format(
        args=args, call_args=call_args, rebind=rebind, before_test=before_test
    )
    if "names =" in rebind:
        source = source.replace("for name in cfg.test_sets", "for name in names")
    message = refusal(source)
    assert "no DataLoader is in reach" in message
    assert f"do_test() builds its own inside (data_loader = build_test_loader({args}) at line" in (
        message
    )
