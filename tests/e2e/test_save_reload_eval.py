"""The tutorials' layout after QAT: the script saves the state dict itself, builds a fresh
`Net()`, loads the saved weights into it and measures it. The rewrite ends training
before the save (the int8 model is saved) and rebuilds the fresh instance as the int8
structure before the load: the accuracy printed is the int8 model's."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

NAME = "save_reload_eval.py"


BEST_EPOCH = (
    '    print(f"[{epoch + 1}] loss: {running_loss / len(trainloader):.3f}")\n',
    '    print(f"[{epoch + 1}] loss: {running_loss / len(trainloader):.3f}")\n'
    "    torch.save(net.state_dict(), PATH)  # the last epoch's checkpoint, while training\n",
)


@pytest.mark.parametrize(
    ("approach", "saved"),
    [("qat", "after training"), ("pruning+qat", "after training"), ("qat", "in the epoch loop")],
)
def test_the_reloaded_model_the_script_evaluates_is_the_int8_one(tmp_path, approach, saved):
    """Saved after training: the int8 model's state dict; saved in the epoch loop: the
    fake-quant model's, which the reload converts to the int8 model."""
    source = script_path(NAME).read_text()
    if saved == "in the epoch loop":
        source = source.replace(*BEST_EPOCH).replace("torch.save(net.state_dict(), PATH)\n\n", "\n")
        assert source.count("torch.save(") == 1
    script = tmp_path / NAME
    script.write_text(source)
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert run.returncode == 0, run.stderr[-2000:]
    assert summary["quantized_modules"] >= 3, summary
    evaluated = re.search(r"evaluated: (\S+)", run.stdout)
    assert evaluated and ".quantized." in evaluated.group(1), run.stdout[-2000:]
    assert "Accuracy of the network on the test images" in run.stdout


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic"])
def test_after_a_post_training_fit_the_reloaded_model_is_the_int8_one(tmp_path, approach):
    """The fresh instance under a name of its own (`fresh = Net()`): the fit quantizes the
    trained `net` before the save, so `fresh` is rebuilt as the int8 structure before it
    loads the state dict (it failed on the int8 keys before)."""
    source = script_path(NAME).read_text()
    for float_name, fresh_name in [
        ("net = Net()\nnet.load_state_dict", "fresh = Net()\nfresh.load_state_dict"),
        (
            "outputs = net(inputs)\n        _, predicted",
            "outputs = fresh(inputs)\n        _, predicted",
        ),
        ("type(net.fc1)", "type(fresh.fc1)"),
    ]:
        assert float_name in source
        source = source.replace(float_name, fresh_name)
    script = tmp_path / NAME
    script.write_text(source)
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0, summary
    evaluated = re.search(r"evaluated: (\S+)", run.stdout)
    assert evaluated and ".quantized." in evaluated.group(1), run.stdout[-2000:]


def test_a_deployed_copy_from_the_models_factory_loads_the_int8_state_dict(tmp_path):
    """`deployed = build_model(16)` (a torch.nn.Sequential, as the trained model) loads
    what the script exported after a post-training fit: rebuilt as the int8 structure."""
    from tests.coder.test_float_reload import FACTORY

    script = tmp_path / "export.py"
    script.write_text(FACTORY)
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0, summary
