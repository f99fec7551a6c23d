"""What is a model, which one is trained, and what may teach it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neural_coder.analysis import analyze, parse_source
from neural_coder.analysis.pretrained import weights_before_training
from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.runtime.distillation import ModelInputs, call_model


def models_of(text: str) -> list[str]:
    facts = analyze(parse_source(Path("s.py"), text))
    return [f"{f.line}:{f.target}" for f in facts.found if f.kind == "model"]


HF_EVAL = """from transformers import AutoConfig, AutoTokenizer, AutoImageProcessor, AutoModelForSequenceClassification
import torch
config = AutoConfig.from_pretrained("ckpt")
tokenizer = AutoTokenizer.from_pretrained("ckpt")
processor = AutoImageProcessor.from_pretrained("ckpt")
model = AutoModelForSequenceClassification.from_pretrained("ckpt", config=config)
model = model.to("cpu")
model = torch.compile(model)
criterion = torch.nn.CrossEntropyLoss()
heads = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
"""


def test_configs_tokenizers_processors_criteria_and_containers_are_not_models():
    assert models_of(HF_EVAL) == ["6:model"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "ckpt = torch.load(p)\nmodel = Net()\nmodel.load_state_dict(ckpt['model'])\n",
            ["5:model"],
        ),
        ("state = torch.load(p)\nmodel = Net()\nmodel.load_state_dict(state)\n", ["5:model"]),
        ("ckpt = torch.load(p, weights_only=True)\n", []),
        ("model = torch.load(p)\nmodel.eval()\n", ["4:model"]),
    ],
)
def test_a_checkpoint_dict_is_not_a_model_a_module_loaded_whole_is(code, expected):
    head = "import torch\nclass Net(torch.nn.Module):\n    pass\n"
    assert models_of(head + code) == expected


@pytest.mark.parametrize(
    "rebinding",
    [
        "model = model.to(device)",
        "model = torch.compile(model)",
        "model = torch.nn.parallel.DistributedDataParallel(model)",
        "model, opt = accelerator.prepare(model, opt)",
    ],
)
def test_a_re_bound_model_is_one_model(rebinding):
    text = (
        "import timm, torch\n"
        "def create():\n    net = timm.create_model('resnet18')\n    return net\n"
        "model = create()\nopt = torch.optim.SGD(model.parameters())\n" + rebinding + "\n"
    )
    assert models_of(text) == ["5:model"]


GAN = """import torch
G = torch.nn.Linear(2, 2)
D = torch.nn.Linear(2, 1)
d_opt = torch.optim.Adam(D.parameters())
g_opt = torch.optim.Adam(G.parameters())
for z in [torch.randn(4, 2)]:
    d_loss = D(G(z)).mean()
    d_loss.backward()
    d_opt.step()
"""

TEACHER = """import torch
teacher = torch.nn.Linear(2, 2)
teacher.load_state_dict(torch.load("t.pt"))
student = torch.nn.Linear(2, 2)
params = [{"params": student.parameters(), "lr": 0.1}]
opt = torch.optim.SGD(params)
for x in [torch.randn(4, 2)]:
    with torch.no_grad():
        t_out = teacher(x)
    s_out = student(x)
    loss = (s_out - t_out).pow(2).mean()
    loss.backward()
    opt.step()
"""


def test_two_models_that_optimizers_update_are_ambiguous():
    facts = analyze(parse_source(Path("gan.py"), GAN))
    assert facts.loop is None and "several models (D, G)" in facts.loop_error.message


def test_the_model_the_optimizer_updates_is_trained_and_a_frozen_one_teaches():
    facts = analyze(parse_source(Path("kd.py"), TEACHER))
    assert facts.loop is not None
    assert facts.loop.model_in_entry == "student"
    assert (facts.loop.teacher_in_entry, facts.loop.teacher_output) == ("teacher", "t_out")


def weights(text: str, model: str = "model") -> tuple[bool, str]:
    facts = analyze(parse_source(Path("s.py"), text))
    loop = facts.loop
    assert loop is not None, facts.loop_error
    found = weights_before_training(facts.index, model, loop.entry_scope, loop.entry_loop)
    return found.trained, found.why


LOOP = """
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(2, 4)]:
    loss = model(x).sum()
    loss.backward()
    opt.step()
"""


@pytest.mark.parametrize(
    ("build", "trained", "why"),
    [
        ("model = Net()", False, "randomly initialised (Net() at line 4)"),
        ("model = Net()\nmodel.load_state_dict(torch.load('w.pt'))", True, "load_state_dict"),
        (
            "model = Net()\nif args.resume:\n    model.load_state_dict(sd)",
            False,
            "only when args.resume",
        ),
        ("model = Net()\nutils.load_checkpoint('best.pth', model)", True, "utils.load_checkpoint"),
        ("model = torch.load('whole.pt')", True, "loaded whole"),
        (
            "model = AutoModelForSequenceClassification.from_pretrained('ft')",
            True,
            "trained checkpoint",
        ),
        (
            "model = AutoModelForSequenceClassification.from_pretrained('base', num_labels=3)",
            False,
            "new, randomly initialised head (num_labels=3",
        ),
        ("model = models.resnet18(weights='DEFAULT')", True, "pretrained weights requested"),
        (
            "model = models.resnet18(weights='DEFAULT')\nmodel.fc = torch.nn.Linear(512, 2)",
            False,
            "model.fc = ... at line 5",
        ),
        # torchvision-reference style: pretrained weights behind a flag that is off by default
        (
            "p = argparse.ArgumentParser()\np.add_argument('--weights', default=None)\n"
            "args = p.parse_args()\nmodel = models.get_model('resnet18', weights=args.weights)",
            False,
            "only when --weights is given (weights=args.weights",
        ),
        (
            "p = argparse.ArgumentParser()\np.add_argument('--pretrained', action='store_true')\n"
            "args = p.parse_args()\nmodel = models.resnet18(pretrained=args.pretrained)",
            False,
            "only when --pretrained is given",
        ),
        (
            "p = argparse.ArgumentParser()\np.add_argument('--weights', default='IMAGENET1K_V1')\n"
            "args = p.parse_args()\nmodel = models.get_model('resnet18', weights=args.weights)",
            True,
            "pretrained weights requested",
        ),
        # yolov5 style: loaded under a condition the --weights default makes true
        (
            "ROOT = '.'\np = argparse.ArgumentParser()\n"
            "p.add_argument('--weights', default=ROOT / 'small.pt')\n"
            "opt = p.parse_args()\nepochs, weights = opt.epochs, opt.weights\n"
            "pretrained = str(weights).endswith('.pt')\nmodel = Net()\n"
            "if pretrained:\n    model.load_state_dict(torch.load(weights))",
            True,
            "when pretrained, which the default --weights makes true; with another --weights",
        ),
        (
            "p = argparse.ArgumentParser()\np.add_argument('--weights', default='')\n"
            "opt = p.parse_args()\npretrained = opt.weights.endswith('.pt')\nmodel = Net()\n"
            "if pretrained:\n    model.load_state_dict(torch.load(opt.weights))",
            False,
            "only when pretrained",
        ),
        (
            "p = argparse.ArgumentParser()\np.add_argument('--init', default='ckpt.pt')\n"
            "args = p.parse_args()\nmodel = Net()\n"
            "if not args.init.startswith('scratch'):\n    model.load_state_dict(torch.load(args.init))",
            True,
            "which the default --init makes true",
        ),
        (  # a condition that depends on more than the options: unknown, so not trained
            "p = argparse.ArgumentParser()\np.add_argument('--weights', default='w.pt')\n"
            "opt = p.parse_args()\npretrained = os.path.exists(opt.weights)\nmodel = Net()\n"
            "if pretrained:\n    model.load_state_dict(torch.load(opt.weights))",
            False,
            "only when pretrained",
        ),
    ],
)
def test_the_default_teacher_needs_a_model_loaded_trained(build, trained, why):
    head = (
        "import argparse, os, torch, utils\nfrom torchvision import models\n"
        "from transformers import AutoModelForSequenceClassification\n"
    )
    net = "class Net(torch.nn.Module):\n    pass\n"
    got = weights(head + build + "\n" + LOOP + net)
    assert got[0] is trained and why in got[1], got


def test_inputs_given_by_position_and_keyword_reach_the_teacher_the_same_way():
    text = TEACHER.replace("s_out = student(x)", "s_out = student(x, scale=2)")
    options = build_options("distillation", "runtime", {}, {})
    rewritten, report = rewrite_source(Path("kd.py"), text, options)
    assert report.status is Status.TRANSFORMED
    assert "ModelInputs(x, scale=2), s_out, loss, teacher_output=t_out" in rewritten
    assert "import ModelInputs" in rewritten
    with pytest.raises(NeuralCoderError, match="positional and keyword arguments together"):
        rewrite_source(Path("kd.py"), text, build_options("distillation", "inc", {}, {}))


def test_model_inputs_call_the_model_with_both_kinds_of_argument():
    class Scaled(torch.nn.Module):
        def forward(self, x, scale=1):
            return x * scale

    assert torch.equal(
        call_model(Scaled(), ModelInputs(torch.ones(2), scale=3)), torch.full((2,), 3.0)
    )


ENCODER_HEAD_TRAINED = """import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        with torch.no_grad():
            x = self.backbone(x)
        return self.head(x)


encoder = Encoder()
decoder = nn.Linear(4, 3)
params = list(decoder.parameters()) + list(encoder.head.parameters())
optimizer = torch.optim.Adam(params)
for x, y in [(torch.randn(2, 8), torch.tensor([0, 1]))]:
    features = encoder(x)
    outputs = decoder(features)
    loss = nn.functional.cross_entropy(outputs, y)
    loss.backward()
    optimizer.step()
"""


def test_a_model_whose_head_the_optimizer_trains_is_no_frozen_teacher():
    """Captioning style: the optimizer takes the decoder's parameters and those of the
    encoder's head (`encoder.head.parameters()`); the encoder trains too, so it is neither
    a teacher for distillation nor left out: the two co-trained models are ambiguous."""
    facts = analyze(parse_source(Path("caption.py"), ENCODER_HEAD_TRAINED))
    assert facts.loop is None
    assert "several models (decoder, encoder)" in facts.loop_error.message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from zoo import get_model\nmodel = get_model(args.arch)\n", ["2:model"]),
        ("import zoo\nnet = zoo.create_network(name)\n", ["2:net"]),
        ("from utils import load_model\nmodel = load_model('best.pth')\n", ["2:model"]),
        ("from zoo import MODELS\nmodel = MODELS[args.arch](num_classes=10)\n", ["2:model"]),
        ("from zoo import model_dict\nmodel = model_dict[opt.model]()\n", ["2:model"]),
        (
            "import torchvision.models as models\nmodel = getattr(models, args.arch)()\n",
            ["2:model"],
        ),
        # wraps of a model the script has, forward calls and other factories build none
        ("from peft import get_peft_model\nmodel = get_peft_model(model, config)\n", []),
        ("from utils import load_model\nmodel = load_model(net, 'best.pth')\n", []),
        ("out = self.nets[i](x)\n", []),
        ("from utils import get_loader\nloader = get_loader(args)\n", []),
        ("from utils import get_model_config\ncfg = get_model_config(args)\n", []),
    ],
)
def test_factories_and_registries_of_the_project_build_models(code, expected):
    assert models_of(code) == expected


FACTORY_EVAL = """import torch
from zoo import get_model


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def main(args):
    model = get_model(args.arch)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4), torch.zeros(8)), batch_size=4)
    print(evaluate(model, loader))
"""


def test_an_eval_script_whose_model_comes_from_a_project_factory_is_quantized():
    options = build_options("ptq-static", "runtime", {}, {})
    rewritten, report = rewrite_source(Path("eval.py"), FACTORY_EVAL, options)
    assert report.status is Status.TRANSFORMED, report
    lines = rewritten.splitlines()
    fit = next(i for i, line in enumerate(lines) if "quantization.fit(" in line)
    assert fit > next(i for i, line in enumerate(lines) if "model.load_state_dict" in line)
    assert fit < next(i for i, line in enumerate(lines) if "print(evaluate(model" in line)


PIPELINE = """from transformers import pipeline
classifier = pipeline("text-classification", model="./model")
print(classifier(["good", "bad"]))
"""


def test_the_model_a_pipeline_builds_is_quantized_and_given_back_bare():
    options = build_options("ptq-dynamic", "runtime", {}, {})
    rewritten, report = rewrite_source(Path("p.py"), PIPELINE, options)
    assert report.status is Status.TRANSFORMED, report
    assert "quantization.fit(classifier.model," in rewritten
    assert (
        "classifier.model = quantized_model.model if quantized_model is not None "
        "else classifier.model" in rewritten
    )
    # static calibration needs batches, which no loader of this script gives
    with pytest.raises(NeuralCoderError, match="static quantization needs data"):
        rewrite_source(Path("p.py"), PIPELINE, build_options("ptq-static", "runtime", {}, {}))


def test_two_pipelines_name_no_one_model():
    text = PIPELINE + 'summarizer = pipeline("summarization", model="./t5")\n'
    with pytest.raises(NeuralCoderError, match="no model was found"):
        rewrite_source(Path("p.py"), text, build_options("ptq-dynamic", "runtime", {}, {}))


def test_a_torchscript_model_is_refused_with_the_way_to_quantize_it():
    text = (
        "import torch\nmodel = torch.jit.load('scripted.pt')\nmodel.eval()\n"
        "print(model(torch.randn(1, 4)))\n"
    )
    with pytest.raises(NeuralCoderError, match=r"TorchScript module \(torch.jit.load at line 2\)"):
        rewrite_source(Path("j.py"), text, build_options("ptq-dynamic", "runtime", {}, {}))


@pytest.mark.parametrize(
    ("build", "trained", "why"),
    [
        # the checkpoint is the script's own fine-tuned folder: num_labels is its head's size
        (
            "model = AutoModelForSequenceClassification.from_pretrained('./sst2-out', num_labels=2)",
            True,
            "fine-tuned checkpoint loaded from a folder",
        ),
        (
            "out_dir = os.path.join('runs', 'sst2')\n"
            "model = AutoModelForSequenceClassification.from_pretrained(out_dir, num_labels=2)\n"
            "model.save_pretrained(out_dir)",
            True,
            "fine-tuned checkpoint loaded from a folder",
        ),
        # a hub base model: the head really is new
        (
            "model = AutoModelForSequenceClassification.from_pretrained("
            "'bert-base-uncased', num_labels=2)",
            False,
            "'bert-base-uncased' names a hub model, not a fine-tuned folder: it gets a new, "
            "randomly initialised head (num_labels=2",
        ),
        # a path from an option with no default: said as a possibility
        (
            "p = argparse.ArgumentParser()\np.add_argument('--model_path')\nargs = p.parse_args()\n"
            "model = AutoModelForSequenceClassification.from_pretrained(args.model_path, num_labels=2)",
            False,
            "the head may be new and randomly initialised (num_labels=2, "
            "transformers.AutoModelForSequenceClassification.from_pretrained at line 6): it is "
            "unless the checkpoint at args.model_path was fine-tuned with a head of that size",
        ),
    ],
)
def test_a_head_sized_by_num_labels_is_random_only_for_a_base_model(build, trained, why):
    """`from_pretrained(path, num_labels=2)` was always said to get "a new, randomly
    initialised head", though a checkpoint fine-tuned with that head keeps it."""
    text = f"import argparse, os, torch\nfrom transformers import AutoModelForSequenceClassification\n{build}\n{LOOP}"
    found, said = weights(text)
    assert found is trained and why in said
