"""A script that quantizes with torch itself (dynamic quantization of an eval-only
script, eager prepare/convert, FX prepare_fx/convert_fx) is refused for QAT and the
post-training quantizations, naming the call and its line: the inserted fit would
quantize the int8 model a second time (it did, before). bf16 still rewrites it."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import run_cli

SCRIPT = """import torch
{imports}
from torch.utils.data import DataLoader, TensorDataset


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def main(quantize=True):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model.load_state_dict(torch.load("mlp.pt", weights_only=True))
    loader = DataLoader(TensorDataset(torch.randn(64, 8), torch.randint(0, 2, (64,))), batch_size=16)
    if quantize:
        model = {call}
    print(evaluate(model, loader))


if __name__ == "__main__":
    main()
"""
VARIANTS = {
    "torch.quantization.quantize_dynamic": (
        "",
        "torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)",
    ),
    "quantize_dynamic": (
        "from torch.ao.quantization import quantize_dynamic",
        "quantize_dynamic(model, {torch.nn.Linear})",
    ),
    "tq.convert": ("import torch.ao.quantization as tq", "tq.convert(tq.prepare(model))"),
    "convert_fx": (
        "from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx",
        'convert_fx(prepare_fx(model, {"": None}, (torch.randn(1, 8),)))',
    ),
}


def script(variant: str) -> str:
    imports, call = VARIANTS[variant]
    return SCRIPT.format(imports=imports, call=call)


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_quantizing_again_is_refused_naming_the_call(variant, approach):
    text = script(variant)
    line = next(
        i for i, row in enumerate(text.splitlines(), 1) if "model = " in row and "(model" in row
    )
    with pytest.raises(AnalysisError) as caught:
        rewrite_source(Path("eval_q.py"), text, build_options(approach, "runtime", {}, {}))
    message = str(caught.value)
    assert f"already quantizes with torch ({variant}" in message
    assert f"at line {line})" in message and f"remove the call at line {line}" in message


def test_the_cli_refusal_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "eval_q.py"
    path.write_text(script("quantize_dynamic"))
    result = run_cli("optimize", path, "--approach", "ptq-static")
    assert result.exit_code == 1 and "already quantizes with torch" in result.output
    assert path.read_text() == script("quantize_dynamic")


def test_bf16_still_rewrites_and_a_second_run_is_a_no_op():
    options = build_options("bf16", "runtime", {}, {})
    rewritten, report = rewrite_source(Path("eval_q.py"), script("quantize_dynamic"), options)
    assert report.status is Status.TRANSFORMED and "mix_precision.fit(" in rewritten
    again, second = rewrite_source(Path("eval_q.py"), rewritten, options)
    assert second.status is Status.UNCHANGED and again == rewritten


QAT_LOOP = """import torch
from torch.ao.quantization import convert, get_default_qat_qconfig, prepare_qat


def main():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    loader = torch.utils.data.DataLoader(torch.randn(64, 8), batch_size=16)
    model.qconfig = get_default_qat_qconfig("x86")
    model = prepare_qat(model.train())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x in loader:
            loss = model(x).pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    torch.save(convert(model).state_dict(), "int8.pt")
"""


def test_bf16_after_the_scripts_own_qat_is_refused_and_pruning_still_works():
    # the fit went after training, on the fake-quantized model: it converted nothing
    with pytest.raises(AnalysisError, match="bf16 would find no float Linear / Conv") as caught:
        rewrite_source(Path("qat.py"), QAT_LOOP, build_options("bf16", "runtime", {}, {}))
    assert "pruning and distillation work" in (caught.value.hint or "")
    options = build_options("pruning", "runtime", {}, {})
    _, report = rewrite_source(Path("qat.py"), QAT_LOOP, options)
    assert report.status is Status.TRANSFORMED
