"""QAT saves the int8 model's state dict; a path of the same script that loads it into a
float instance of the class (fast-neural-style's `stylize`, an eval subcommand, the
tutorials' `net = Net(); net.load_state_dict(torch.load(PATH))`) cannot. On the bundled
runtime the state dict, read once into a name, rebuilds the instance as the int8
structure it was saved from (`structure_for`) before the script's own load; on INC it is
warned. A same-class teacher loaded before training is no such path."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source

SCRIPT = """import sys
import torch
import torch.nn.functional as F
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 2)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
def train():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
    torch.save(model.state_dict(), "net.pt")
def evaluate():
    with torch.no_grad():
        net = Net()
        net.load_state_dict(torch.load("net.pt", weights_only=True))
        print(net(torch.randn(1, 8)))
if sys.argv[1:] == ["eval"]:
    evaluate()
else:
    train()
"""


def _rewrite(text: str, target: str = "inc", approach: str = "qat") -> tuple[str, list[str]]:
    out, report = rewrite_source(Path("s.py"), text, build_options(approach, target, {}, {}))
    assert report.status is Status.TRANSFORMED, report
    return out, report.warnings


def _warnings(text: str) -> list[str]:
    return _rewrite(text)[1]


def test_a_float_instance_loading_the_saved_state_dict_is_warned_on_inc():
    warnings = _warnings(SCRIPT)
    assert any(
        "line 25: a float Net() built at line 24 loads a state dict" in w for w in warnings
    ), warnings


def test_a_same_class_teacher_loaded_before_training_is_not_warned():
    text = SCRIPT.replace(
        "    model = Net()\n",
        "    teacher = Net()\n    teacher.load_state_dict(torch.load('t.pt', weights_only=True))\n    model = Net()\n",
    ).replace("def evaluate():\n    with", "def evaluate():\n    return\n    with")
    text = text.replace(
        '        net.load_state_dict(torch.load("net.pt", weights_only=True))\n', ""
    )
    assert not any("loads a state dict" in w for w in _warnings(text))


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_the_float_instance_is_rebuilt_as_the_int8_structure_on_the_runtime(approach):
    out, warnings = _rewrite(SCRIPT, "runtime", approach)
    assert not any("loads a state dict" in w for w in warnings), warnings
    assert (
        "        net = Net()\n"
        '        loaded_state = torch.load("net.pt", weights_only=True)  # neural-coder\n'
        "        net, loaded_state = structure_for(loaded_state, net)  # neural-coder\n"
        "        net.load_state_dict(loaded_state)\n"
    ) in out
    assert "from neural_coder.runtime import structure_for\n" in out
    again, report = rewrite_source(Path("s.py"), out, build_options(approach, "runtime", {}, {}))
    assert again == out and report.status is Status.UNCHANGED
    reverted, _ = revert_source(Path("s.py"), out)
    assert reverted == SCRIPT


def test_a_state_dict_already_in_a_name_is_read_through_a_name_of_its_own():
    """`state` keeps what the script loaded; the name given to the load is rebound."""
    text = SCRIPT.replace(
        '        net.load_state_dict(torch.load("net.pt", weights_only=True))\n',
        '        state = torch.load("net.pt", weights_only=True)\n        net.load_state_dict(state)\n',
    )
    out, _ = _rewrite(text, "runtime")
    assert (
        "        loaded_state = state  # neural-coder\n"
        "        net, loaded_state = structure_for(loaded_state, net)  # neural-coder\n"
        "        net.load_state_dict(loaded_state)\n"
    ) in out
    assert revert_source(Path("s.py"), out)[0] == text


def test_a_load_whose_result_is_read_is_warned():
    text = SCRIPT.replace(
        '        net.load_state_dict(torch.load("net.pt", weights_only=True))\n',
        '        missing = net.load_state_dict(torch.load("net.pt", weights_only=True))\n',
    )
    out, warnings = _rewrite(text, "runtime")
    assert "structure_for" not in out
    assert any("loads a state dict" in w for w in warnings), warnings


TUTORIAL = """import torch
import torch.nn.functional as F
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 2)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))]:
        optimizer.zero_grad()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()
PATH = "./net.pth"
torch.save(net.state_dict(), PATH)
net = Net()
net.load_state_dict(torch.load(PATH))
print(net(torch.randn(1, 8)))
"""


def test_a_load_into_a_model_built_anew_after_training_is_no_best_weights_reload():
    """The training ends before the save (which then writes the int8 model), not after
    the reload into the fresh `Net()`, which is no reload of the trained model."""
    out, _ = _rewrite(TUTORIAL, "runtime")
    lines = out.splitlines()
    end = lines.index("compression_manager.callbacks.on_train_end()  # neural-coder")
    assert lines[end + 1] == 'PATH = "./net.pth"', lines[end - 2 : end + 3]
    assert "net, loaded_state = structure_for(loaded_state, net)  # neural-coder" in out


def test_the_best_weights_loaded_back_into_the_trained_model_still_end_training_after():
    text = TUTORIAL.replace("net = Net()\nnet.load_state_dict", "net.load_state_dict")
    out, _ = _rewrite(text, "runtime")
    lines = out.splitlines()
    end = lines.index("compression_manager.callbacks.on_train_end()  # neural-coder")
    assert lines[end - 1] == "net.load_state_dict(torch.load(PATH))"
    assert "structure_for" not in out


@pytest.mark.parametrize(
    ("script", "approach"),
    [(SCRIPT, "ptq-static"), (SCRIPT, "ptq-dynamic"), (TUTORIAL, "ptq-dynamic")],
    ids=["eval-path-static", "eval-path-dynamic", "tutorial-dynamic"],
)
def test_after_a_post_training_quantization_the_float_instance_is_rebuilt_too(approach, script):
    """The fit quantizes the trained model before the script saves it, so its state dict
    is the int8 model's as after QAT (before, the float `Net()` failed to load it)."""
    out, warnings = _rewrite(script, "runtime", approach)
    assert "quantization.fit(" in out
    assert "structure_for(loaded_state, net)  # neural-coder" in out, out
    assert not any("loads a state dict" in w for w in warnings), warnings
    assert revert_source(Path("s.py"), out)[0] == script


def test_after_a_post_training_quantization_on_inc_the_float_instance_is_warned():
    out, warnings = _rewrite(TUTORIAL, "inc", "ptq-dynamic")
    assert "structure_for" not in out
    assert any("after ptq-dynamic the script saves the int8 model's" in w for w in warnings)


FACTORY = """import torch
import torch.nn.functional as F
def build_model(width):
    return torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))
def main():
    model = build_model(16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))]:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    torch.save(model.state_dict(), "exported.pt")
    deployed = build_model(16)
    deployed.load_state_dict(torch.load("exported.pt"))
    print(deployed(torch.randn(1, 8)))
main()
"""


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_a_library_module_from_the_same_factory_is_rebuilt_too(approach):
    """`torch.nn.Sequential` built by `build_model()`, called again for the deployed copy:
    before, only a project class (`Net()`) built at another line was recognised, so the
    deployed copy failed to load the int8 state dict."""
    out, _ = _rewrite(FACTORY, "runtime", approach)
    assert "deployed, loaded_state = structure_for(loaded_state, deployed)  # neural-coder" in out


def test_the_trained_model_reloaded_from_its_own_factory_call_is_no_fresh_copy():
    text = FACTORY.replace("    deployed = build_model(16)\n", "").replace("deployed", "model")
    out, _ = _rewrite(text, "runtime", "ptq-dynamic")
    assert "structure_for" not in out


HF_SCRIPT = """import torch
import torch.nn.functional as F
from transformers import DistilBertConfig, DistilBertForTokenClassification

model = DistilBertForTokenClassification(DistilBertConfig(num_labels=4))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for batch in loader:
        optimizer.zero_grad()
        outputs = model(input_ids=batch["input_ids"])
        loss = F.cross_entropy(outputs.logits.view(-1, 4), batch["labels"].view(-1))
        loss.backward()
        optimizer.step()
torch.save(model.state_dict(), "tokcls.pt")
fresh = DistilBertForTokenClassification(model.config)
fresh.load_state_dict(torch.load("tokcls.pt"))
"""


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_a_fresh_instance_of_a_transformers_class_is_rebuilt_as_the_int8_structure(approach):
    """A model built from a transformers class (`DistilBertForTokenClassification(config)`),
    saved with torch.save and loaded into a new instance of the class: the load crashed on
    the int8 state dict ("Missing key(s) ... Unexpected key(s) ... _packed_params")."""
    out, _ = _rewrite(HF_SCRIPT, "runtime", approach)
    assert (
        'loaded_state = torch.load("tokcls.pt")  # neural-coder\n'
        "fresh, loaded_state = structure_for(loaded_state, fresh)  # neural-coder\n"
        "fresh.load_state_dict(loaded_state)\n"
    ) in out
    inc_warnings = _rewrite(HF_SCRIPT, "inc", approach)[1]
    assert any("float DistilBertForTokenClassification()" in w for w in inc_warnings)
