"""Bad input gets a clear message, a non-zero exit, and an untouched file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

NO_STEP = """import torch
model = torch.nn.Linear(2, 2)
for x in [torch.randn(1, 2)]:
    loss = model(x).sum()
    loss.backward()
"""

TWO_LOOPS = """import torch
model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(1, 2)]:
    loss = model(x).sum()
    loss.backward()
    opt.step()
for x in [torch.randn(1, 2)]:
    loss = model(x).sum()
    loss.backward()
    opt.step()
"""

TWO_MODELS = """import torch
student = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 2))
teacher = torch.nn.Linear(2, 2)
opt = torch.optim.SGD([*student.parameters(), *teacher.parameters()], lr=0.1)
for x in [torch.randn(1, 2)]:
    loss = (student(x) - teacher(x)).pow(2).sum()
    loss.backward()
    opt.step()
"""


def write(tmp_path: Path, text: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


COMPILED_STEP = """import torch
model = torch.nn.Linear(2, 2)
opt = torch.optim.Adam(model.parameters())
def train(mod, data):
    opt.zero_grad()
    loss = mod(data).sum()
    loss.backward()
    opt.step()
for i in range(3):
    train(model, torch.randn(1, 2))
train_opt = torch.compile(train)
for i in range(3):
    train_opt(model, torch.randn(1, 2))
"""


def assert_untouched(path: Path, text: str) -> None:
    assert path.read_text() == text
    assert not path.with_name(path.name + ".bak").exists()


def test_a_file_that_does_not_parse_exits_2_with_its_position(tmp_path):
    text = "import torch\n\ndef f(:\n    pass\n"
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "qat")
    assert result.exit_code == 2
    assert f"{path}:3:" in result.output
    assert_untouched(path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NO_STEP, "no optimizer step found after the backward call at line 5"),
        (TWO_LOOPS, "several training loops (lines 4, 8)"),
        (TWO_MODELS, "the loss depends on several models (student, teacher)"),
        ("import torch\nprint(torch.ones(1))\n", "no training loop: nothing calls .backward()"),
        (
            COMPILED_STEP,
            "train() runs the training step and is also handed to torch.compile() at line 11",
        ),
    ],
)
def test_refusals_name_the_lines_and_leave_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 1
    assert "Failed" in result.output and message in result.output
    assert_untouched(path, text)


def test_an_evaluation_script_loading_a_state_dict_is_told_how_to_load_a_compressed_one(tmp_path):
    loads = "import torch\nnet = torch.nn.Linear(2, 2)\nnet.load_state_dict(torch.load('c.pt'))\n"
    told = run_cli("optimize", write(tmp_path, loads), "--approach", "qat")
    assert told.exit_code == 1 and "structure_for(state, model)" in told.output
    plain = run_cli("optimize", write(tmp_path, "import torch\nprint(1)\n"), "--approach", "qat")
    assert plain.exit_code == 1 and "structure_for" not in plain.output


def test_a_model_marker_resolves_two_candidate_models(tmp_path):
    text = TWO_MODELS.replace(
        "(student(x) - teacher(x))", "(student(x)  # neural-coder: model\n            - teacher(x))"
    )
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 0, result.output
    assert "prepare_compression(student," in path.read_text().replace("\n", "").replace("    ", "")


TRAINER_REFUSALS = [
    ("trainer = Trainer(model=None)\ntrainer.train()\n", "is given no model"),
    ("trainer = Trainer(model_init=lambda: None)\ntrainer.train()\n", "model_init"),
    ("trainer = Trainer(model=Net())\ntrainer.train()\n", "built inside the call"),
    ("trainer = Trainer(model=model)\n", "never trained"),
    (
        "a = Trainer(model=model)\nb = Trainer(model=model)\na.train()\nb.train()\n",
        "several Trainers",
    ),
    (
        "Trainer(model=model).train()\n",
        "not assigned to a name",
    ),
]


@pytest.mark.parametrize(("body", "message"), TRAINER_REFUSALS)
def test_trainer_scripts_the_tool_cannot_place_hooks_in_fail_clearly(tmp_path, body, message):
    text = "from transformers import Trainer\nmodel = object()\n" + body
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "distillation")
    assert result.exit_code != 0
    assert "Failed" in result.output and message in result.output, result.output
    assert_untouched(path, text)


PEFT_LOOP = """import torch
from peft import LoraConfig, get_peft_model
model = torch.nn.Sequential(torch.nn.Linear(4, 4))
{adapters}
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [torch.randn(2, 4)]
def evaluate(model):
    return model(data[0]).sum().item()
for x in data:
    loss = model(x).sum()
    loss.backward()
    opt.step()
print(evaluate(model))
"""
PEFT_TRAINER = """from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, Trainer
model = AutoModelForSequenceClassification.from_config(config)
model = get_peft_model(model, LoraConfig(r=4))
trainer = Trainer(model=model, train_dataset=rows, eval_dataset=rows)
trainer.train()
"""


@pytest.mark.parametrize(
    "adapters",
    [
        "model = get_peft_model(model, LoraConfig(r=4, target_modules=['0']))",
        "model.add_adapter(LoraConfig(r=4, target_modules=['0']))",
    ],
)
@pytest.mark.parametrize(
    ("approach", "what"),
    [
        ("pruning", "pruning would act on the frozen base weights"),
        ("pruning+qat", "pruning and quantization-aware training would act"),
        ("ptq-dynamic", "post-training quantization would act"),
    ],
)
def test_pruning_or_quantizing_a_peft_model_is_refused(tmp_path, adapters, approach, what):
    text = PEFT_LOOP.format(adapters=adapters)
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    assert f"{path}:4: model has PEFT adapters" in result.output
    assert what in result.output and "merge_and_unload()" in result.output
    assert_untouched(path, text)


@pytest.mark.parametrize("approach", ["qat", "ptq-static"])
def test_a_trainer_given_a_peft_model_is_refused_for_quantization(tmp_path, approach):
    path = write(tmp_path, PEFT_TRAINER)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    assert f"{path}:4: model has PEFT adapters (get_peft_model at line 4)" in result.output
    assert_untouched(path, PEFT_TRAINER)


def test_a_peft_model_is_distilled(tmp_path):
    text = PEFT_LOOP.format(adapters="model = get_peft_model(model, LoraConfig(r=4))")
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "distillation", "--teacher", "copy")
    assert result.exit_code == 0, result.output
    assert "prepare_compression(" in path.read_text()


FROZEN_LOOP = """import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 2)
    def forward(self, x):
        return self.head(self.body(x))
def train(model, data, opt):
    for x in data:
        loss = model(x).sum()
        loss.backward()
        opt.step()
model = Net()
{freeze}
opt = torch.optim.SGD(model.parameters(), lr=0.1)
train(model, [torch.randn(2, 4)], opt)
torch.save(model.state_dict(), "net.pt")
"""


@pytest.mark.parametrize(
    "freeze",
    [
        "mark_only_lora_as_trainable(model)",
        "model.requires_grad_(False)",
        "for p in model.parameters():\n    p.requires_grad = False",
        "for n, p in model.named_parameters():\n    if 'lora_' not in n:\n        p.requires_grad = False",
    ],
)
@pytest.mark.parametrize("approach", ["pruning", "pruning+qat", "qat", "distillation+qat"])
def test_pruning_or_qat_of_weights_frozen_by_the_script_is_refused(tmp_path, freeze, approach):
    """Every base weight frozen (litgpt's mark_only_lora_as_trainable, requires_grad_(False),
    a freezing loop) before the model reaches the training function: pruning would prune
    nothing and QAT would quantize weights it never trains, under fp32 adapters. Refused
    at the freeze, with the way out; the file is untouched."""
    helper = "def mark_only_lora_as_trainable(m):\n    m.requires_grad_(False)\n"
    text = FROZEN_LOOP.format(freeze=freeze)
    text = text.replace("model = Net()", helper + "model = Net()")
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    line = text.splitlines().index(freeze.splitlines()[0]) + 1
    assert f"{path}:{line}: the weights of model are frozen at line {line}" in result.output
    techniques = approach.split("+")
    assert ("nothing would be pruned" in result.output) == ("pruning" in techniques)
    assert ("quantize the frozen weights without training them" in result.output) == (
        "qat" in techniques
    )
    assert ("--approach ptq-dynamic" in result.output) == ("qat" in techniques)
    assert "unfreeze" in result.output
    assert_untouched(path, text)


@pytest.mark.parametrize(
    "freeze",
    [
        "model.body.requires_grad_(False)",
        "for n, p in model.named_parameters():\n    if n.startswith('body'):\n        p.requires_grad = False",
        "model.requires_grad_(True)",
        # transfer learning: every weight frozen, then a new head of several layers
        "for p in model.parameters():\n    p.requires_grad = False\n"
        "model.head = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))",
    ],
)
@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_a_freeze_of_one_part_is_pruned_or_quantized(tmp_path, freeze, approach):
    text = FROZEN_LOOP.format(freeze=freeze)
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 0, result.output
    assert "prepare_compression(" in path.read_text()


LINEAR_PROBES = [
    # every weight frozen, then only the classifier head (a new Linear, or unfrozen) trains
    "for p in model.parameters():\n    p.requires_grad = False\nmodel.head = torch.nn.Linear(4, 2)",
    "model.requires_grad_(False)\nfor p in model.head.parameters():\n    p.requires_grad = True",
    "for p in model.parameters():\n    p.requires_grad = False\n"
    "for p in model.get_classifier().parameters():\n    p.requires_grad = True",
]


@pytest.mark.parametrize("freeze", LINEAR_PROBES)
def test_a_linear_probe_is_quantized_but_not_pruned(tmp_path, freeze):
    # pruning leaves the classifier head (the last Linear) out and the rest gets no
    # gradient: the rewrite ran and pruned nothing (sparsity 0.0)
    text = FROZEN_LOOP.format(freeze=freeze).replace(
        "    def forward",
        "    def get_classifier(self):\n        return self.head\n    def forward",
    )
    path = write(tmp_path, text)
    refused = run_cli("optimize", path, "--approach", "pruning")
    assert refused.exit_code == 1, refused.output
    assert "only its classifier head trains again" in refused.output
    assert_untouched(path, text)
    assert run_cli("optimize", path, "--approach", "qat").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--approach", "prune"], "unknown approach 'prune'"),
        (["--approach", "qat+qat"], "names a technique twice"),
        (
            ["--approach", "pruning", "--target-sparsity", "1.5"],
            "target_sparsity must be in [0, 1)",
        ),
        (["--approach", "pruning", "--pattern", "4by1"], "is not one of NxM"),
        (["--approach", "pruning", "--pattern", "2:4", "--target-sparsity", "0.7"], "exceeds 2/4"),
        (
            ["--approach", "pruning", "--pruning-type", "random"],
            "pruning_type 'random' is not one of",
        ),
        (["--approach", "distillation", "--loss-weights", "0.5,0.6"], "sum to 1"),
        (
            ["--approach", "distillation", "--loss-types", "CE,L1"],
            "loss_types[1] 'L1' is not one of: CE, KL, MSE",
        ),
        (["--approach", "distillation", "--temperature", "0"], "temperature must be > 0"),
    ],
)
def test_option_values_out_of_range_are_usage_errors(tmp_path, args, message):
    path = write(tmp_path, NO_STEP)
    result = run_cli("optimize", path, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert_untouched(path, NO_STEP)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("approach: pruning\npruning:\n  sparsity: 0.5\n", "unknown key pruning.sparsity"),
        ("approach: pruning\nquantize: {}\n", "unknown key 'quantize'"),
        ("approach: pruning\npruning: [1, 2]\n", "'pruning' must be a mapping"),
        ("approach: [pruning\n", "not valid yaml"),
        (
            "approach: pruning\npruning:\n  pattern: 2:4\n",
            "pattern must be str, got 124 (quote it in yaml",
        ),
        ("!!python/object/apply:os.system ['echo hacked']\n", "not valid yaml"),
    ],
)
def test_config_files_are_validated(tmp_path, yaml_text, message):
    config = write(tmp_path, yaml_text, "conf.yaml")
    path = write(tmp_path, NO_STEP)
    result = run_cli("optimize", path, "--config", config)
    assert result.exit_code == 2
    assert message in result.output


def test_config_file_values_are_used_and_flags_override_them(tmp_path, copy_script):
    script = copy_script("step_budget_loop.py")
    config = write(
        tmp_path,
        "approach: pruning\ntarget: inc\npruning:\n  target_sparsity: 0.7\n  pattern: '2:4'\n",
        "c.yaml",
    )
    result = run_cli(
        "optimize",
        script,
        "--config",
        config,
        "--target-sparsity",
        "0.4",
        "--report",
        tmp_path / "r.json",
    )
    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert "target_sparsity=0.4" in text and 'pattern="2:4"' in text
    assert "from neural_compressor.training import prepare_compression" in text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["Transformed"] == 1


def test_a_different_approach_on_a_compressed_script_fails_and_names_what_is_there(
    tmp_path, copy_script
):
    script = copy_script("flat_script.py")
    assert run_cli("optimize", script, "--approach", "pruning").exit_code == 0
    compressed = script.read_text()
    other = run_cli("optimize", script, "--approach", "pruning+qat")
    assert other.exit_code == 1
    assert "already compressed with pruning" in other.output
    assert "pruning+qat was not applied" in other.output and "neural-coder revert" in other.output
    same = run_cli("optimize", script, "--approach", "pruning", "--target-sparsity", "0.9")
    assert same.exit_code == 0 and "Unchanged" in same.output
    assert "options are not re-applied" in same.output
    assert script.read_text() == compressed


LIGHTNING_STYLE = """import torch
import torch.nn.functional as F


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)


def fit(module, loader):
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    for batch_idx, batch in enumerate(loader):
        loss = module.training_step(batch, batch_idx)
        loss.backward()
        opt.step()


fit(Classifier(), [(torch.randn(8, 4), torch.randint(0, 2, (8,)))])
"""


@pytest.mark.parametrize(
    ("approach", "target", "why"),
    [
        ("distillation", "runtime", "distillation needs the outputs of the model's forward"),
        ("qat", "inc", "INC's QAT replaces the model with a traced copy"),
    ],
)
def test_a_loss_from_a_method_of_the_model_is_not_distilled_nor_quantized_on_inc(
    tmp_path, approach, target, why
):
    path = write(tmp_path, LIGHTNING_STYLE)
    result = run_cli("optimize", path, "--approach", approach, "--target", target)
    assert result.exit_code == 1, result.output
    assert "the loss comes from module.training_step(), not from a call of the model" in (
        result.output
    )
    assert why in result.output
    assert_untouched(path, LIGHTNING_STYLE)


@pytest.mark.parametrize("approach", ["pruning", "qat", "pruning+qat"])
def test_a_loss_from_a_method_of_the_model_is_pruned_and_quantized(tmp_path, approach):
    """QAT's traced model keeps the class's methods (training_step) and attributes."""
    path = write(tmp_path, LIGHTNING_STYLE)
    result = run_cli("optimize", path, "--approach", approach, "--no-backup")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert "prepare_compression(" in text and "fit(Classifier(), [" in text
    namespace: dict = {}
    exec(compile(text, str(path), "exec"), namespace)  # the rewritten loop runs
    again = run_cli("optimize", path, "--approach", approach)
    assert again.exit_code == 0 and "Unchanged" in again.output and path.read_text() == text


AUTOCAST = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(8, 4)]:
    with torch.autocast("cpu", dtype=torch.bfloat16{enabled}):
        loss = model(x).float().pow(2).mean()
    loss.backward()
    opt.step()
"""


def test_qat_under_autocast_goes_ahead_on_the_runtime_and_is_refused_for_inc(tmp_path):
    """The runtime's fake-quant modules compute in fp32 under autocast; INC's do not."""
    text = AUTOCAST.format(enabled="")
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning+qat", "--target", "inc")
    assert result.exit_code == 1
    assert f"{path}:5: the model runs under torch.autocast (line 5)" in result.output
    assert "--target runtime" in result.output
    assert_untouched(path, text)
    assert run_cli("optimize", path, "--approach", "pruning", "--diff").exit_code == 0
    result = run_cli("optimize", path, "--approach", "pruning+qat")
    assert result.exit_code == 0 and "prepare_compression(" in path.read_text(), result.output


@pytest.mark.parametrize(
    ("enabled", "warned"), [(", enabled=False", False), (", enabled=amp", True)]
)
def test_qat_for_inc_goes_ahead_where_autocast_is_off_or_switchable(tmp_path, enabled, warned):
    path = write(tmp_path, "amp = False\n" + AUTOCAST.format(enabled=enabled))
    result = run_cli("optimize", path, "--approach", "qat", "--target", "inc", "--diff")
    assert result.exit_code == 0, result.output
    assert ("INC's QAT fake-quant observers take fp32" in result.output) is warned


def test_qat_with_a_trainer_in_mixed_precision_is_refused_for_inc_only(tmp_path):
    text = (
        "from transformers import Trainer, TrainingArguments\nmodel = object()\n"
        "args = TrainingArguments(output_dir='out', bf16=True, use_cpu=True)\n"
        "trainer = Trainer(model=model, args=args)\ntrainer.train()\n"
    )
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "qat", "--target", "inc")
    assert result.exit_code == 1
    assert f"{path}:3: the Trainer trains in mixed precision (bf16=True at line 3)" in result.output
    assert_untouched(path, text)
    assert run_cli("optimize", path, "--approach", "qat", "--diff").exit_code == 0


def test_a_training_function_also_given_a_model_trained_whole_is_pruned(tmp_path):
    # the transfer-learning tutorial: train_model(model_ft) fine-tunes everything, then
    # train_model(model_conv) trains only a new head: the first is pruned
    text = """import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 2)
    def forward(self, x):
        return self.head(self.body(x))
def train_model(model, opt, epochs=2):
    for epoch in range(epochs):
        for x in [torch.randn(2, 4)]:
            loss = model(x).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model
model_ft = Net()
model_ft = train_model(model_ft, torch.optim.SGD(model_ft.parameters(), lr=0.1))
model_conv = Net()
for param in model_conv.parameters():
    param.requires_grad = False
model_conv.head = torch.nn.Linear(4, 2)
model_conv = train_model(model_conv, torch.optim.SGD(model_conv.head.parameters(), lr=0.1))
"""
    path = write(tmp_path, text)
    result = run_cli("optimize", path, "--approach", "pruning")
    assert result.exit_code == 0, result.output
    only_probe = text.replace(
        "model_ft = train_model(model_ft, torch.optim.SGD(model_ft.parameters(), lr=0.1))\n", ""
    )
    path.write_text(only_probe)
    refused = run_cli("optimize", path, "--approach", "pruning")
    assert refused.exit_code == 1 and "only its classifier head trains again" in refused.output
