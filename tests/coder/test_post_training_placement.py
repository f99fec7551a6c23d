"""Where a post-training `fit` goes, and when it is refused: a trained model is final
after the function and the loops that train it and after a reload of its weights;
its result must be read afterwards; a checkpoint dict is no model; an evaluation is
no training epoch or regularizer; the layout of a script does not change the outcome."""

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
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader) / 8

"""


def rewrite(source: str, approach: str = "ptq-static") -> tuple[str, object]:
    options = build_options(approach, None, {}, {})
    return rewrite_source(Path("script.py"), source, options)


def refusal(source: str, approach: str = "ptq-static") -> str:
    """The refusal's text: `file:line: why`, then the hint."""
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, approach)
    return str(refused.value)


def fit_line(text: str) -> int:
    lines = text.splitlines()
    return next(i for i, line in enumerate(lines) if ".fit(" in line)


def test_a_fit_whose_result_nothing_reads_is_saved_after_training():
    """test() reads the global model inside the epoch loop, but before each epoch's
    training, and nothing after training evaluates or saves it: the fit goes after
    training and saves the int8 model (tests/coder/test_saved_fit.py). (Evaluated after
    each epoch's training, see tests/coder/test_last_epoch_fit.py.)"""
    source = HEADER + (
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "\n"
        "def test(epoch):\n"
        "    print(epoch, evaluate(model, loader))\n"
        "\n"
        "for epoch in range(2):\n"
        "    test(epoch)\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    line = source.splitlines().index("for epoch in range(2):") + 1
    assert any(f"nothing after the statement at line {line}" in p for p in report.placed)
    assert fit_line(text) > text.splitlines().index("for epoch in range(2):")
    assert 'quantized_model.save("neural_coder_output/ptq-static")' in text
    # a save of its own after training: the fit goes before it, and saves nothing itself
    fixed, report = rewrite(source + "torch.save(model.state_dict(), 'model.pt')\n")
    assert report.status is Status.TRANSFORMED, report.message
    assert fit_line(fixed) < fixed.splitlines().index("torch.save(model.state_dict(), 'model.pt')")
    assert ".save(" not in fixed.replace("torch.save(", "")


@pytest.mark.parametrize("after", ["validate(model=load_best('best.pt'))", "print(run.model)"])
def test_a_keyword_or_attribute_named_like_the_model_is_not_a_use_of_it(after):
    """yolov5-style: after training, `validate(model=attempt_load(best))` evaluates a
    checkpoint, not the trained model; `model=` is a keyword, not a read of `model`: the
    fit after training saves its result, as when nothing reads the model."""
    source = HEADER + (
        "def load_best(path):\n"
        "    return torch.load(path, weights_only=False)\n"
        "\n"
        "def validate(model):\n"
        "    return model\n"
        "\n"
        "run = None\n"
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "for epoch in range(2):\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        f"{after}\n"
    )
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert fit_line(text) < text.splitlines().index(after)
    assert 'quantized_model.save("neural_coder_output/ptq-dynamic")' in text


def test_evaluating_several_datasets_quantizes_once_before_the_loop():
    source = HEADER + (
        "model = Net()\n"
        "model.load_state_dict(torch.load('net.pt'))\n"
        "val = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "test = DataLoader(TensorDataset(torch.randn(8, 4), torch.ones(8).long()), batch_size=4)\n"
        "for name, loader in {'val': val, 'test': test}.items():\n"
        "    print(name, evaluate(model, loader))\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    loop = lines.index("for name, loader in {'val': val, 'test': test}.items():")
    assert fit_line(text) < loop and not lines[fit_line(text)].startswith(" ")
    # the loop variable is replaced by the loader of the first iteration
    assert "eval_func=lambda candidate: evaluate(candidate, val)" in text
    assert "calib_dataloader=val" in text


def test_a_checkpoint_dict_is_not_a_model():
    """`checkpoint = torch.load(path)` read as a dict: the model is the Net it fills."""
    source = (
        "import torch\nimport torch.nn as nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n\n"
        "checkpoint = torch.load('ckpt.pth')\n"
        "model = Net()\n"
        "model.load_state_dict(checkpoint['model'])\n"
        "model.eval()\n"
        "torch.save(model.state_dict(), 'out.pt')\n"
    )
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert "quantization.fit(model," in text.replace("\n", "").replace("    ", "")
    lines = text.splitlines()
    assert fit_line(text) > lines.index("model.load_state_dict(checkpoint['model'])")
    assert "checkpoint =" not in "".join(lines[fit_line(text) : fit_line(text) + 3])


def test_a_training_epoch_and_a_regularizer_are_not_evaluations():
    source = HEADER + (
        "def l2(model):\n"
        "    return sum(p.pow(2).sum() for p in model.parameters())\n\n"
        "def train_one_epoch(model, loader, optimizer):\n"
        "    total = 0.0\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(x), y) + l2(model)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "        total += loss.item()\n"
        "    return total\n\n"
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "for epoch in range(2):\n"
        "    print(train_one_epoch(model, loader, optimizer), l2(model))\n"
        "print(evaluate(model, loader))\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert "eval_func=lambda candidate: evaluate(candidate, loader)" in text
    assert "train_one_epoch(candidate" not in text and "l2(candidate" not in text


LOADER_LAYOUTS = {
    "module level": (
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(2):\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "print(evaluate(model, loader))\n"
    ),
    "loop wrapped in a function given the loader": (
        "def train(model, data, optimizer):\n"
        "    for epoch in range(2):\n"
        "        for x, y in data:\n"
        "            optimizer.zero_grad()\n"
        "            loss = nn.functional.cross_entropy(model(x), y)\n"
        "            loss.backward()\n"
        "            optimizer.step()\n\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "train(model, loader, optimizer)\n"
        "print(evaluate(model, loader))\n"
    ),
    "main() builds the loader, train() holds the loop": (
        "def train(model, data, optimizer):\n"
        "    for epoch in range(2):\n"
        "        for x, y in data:\n"
        "            optimizer.zero_grad()\n"
        "            loss = nn.functional.cross_entropy(model(x), y)\n"
        "            loss.backward()\n"
        "            optimizer.step()\n\n"
        "def main():\n"
        "    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "    model = Net()\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    train(model, loader, optimizer)\n"
        "    print(evaluate(model, loader))\n\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    ),
}


@pytest.mark.parametrize("layout", list(LOADER_LAYOUTS))
@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "qat"])
def test_the_layout_does_not_change_the_outcome(layout, approach):
    """Issues 16/17: the same data flow, laid out three ways, gets the same rewrite: the
    fit after training with the loader followed through the call's arguments; QAT
    prepared where the model is handed to train(), so the evaluation after it reads the
    quantized model."""
    text, report = rewrite(HEADER + LOADER_LAYOUTS[layout], approach)
    assert report.status is Status.TRANSFORMED, report.message
    if approach == "ptq-static":
        assert "calib_dataloader=loader" in text
    if approach == "qat":
        lines = [line.strip() for line in text.splitlines()]
        rebound = lines.index("model = compression_manager.model  # neural-coder")
        evaluation = lines.index("print(evaluate(model, loader))")
        training = [i for i, line in enumerate(lines) if line.startswith(("train(", "for epoch"))]
        assert rebound < training[-1] < evaluation
        assert (
            lines[evaluation - 1] == "compression_manager.callbacks.on_train_end()  # neural-coder"
        )
    if approach.startswith("ptq"):
        assert "eval_func=lambda candidate: evaluate(candidate, loader)" in text
        lines = text.splitlines()
        evaluation = next(i for i, line in enumerate(lines) if "print(evaluate(model" in line)
        assert fit_line(text) < evaluation
        assert lines[fit_line(text)].startswith(
            lines[evaluation][: -len(lines[evaluation].lstrip())]
        )
    again, second = rewrite(text, approach)
    assert second.status is Status.UNCHANGED and again == text


BNB = {
    "load_in_8bit": "model = AutoModelForCausalLM.from_pretrained('gpt2', load_in_8bit=True)\n",
    "BitsAndBytesConfig": (
        "bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2', quantization_config=bnb)\n"
    ),
}


@pytest.mark.parametrize("loading", list(BNB))
@pytest.mark.parametrize("approach", ["bf16", "ptq-dynamic", "ptq-static"])
def test_bitsandbytes_models_are_refused(loading, approach):
    source = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig\n\n"
        "def perplexity(model, batch):\n"
        "    with torch.no_grad():\n"
        "        return torch.exp(model(**batch, labels=batch['input_ids']).loss).item()\n\n"
        "tokenizer = AutoTokenizer.from_pretrained('gpt2')\n"
        + BNB[loading]
        + "batch = tokenizer(['hello world'], return_tensors='pt')\n"
        "loader = torch.utils.data.DataLoader([batch])\n"
        "print(perplexity(model, batch))\n"
    )
    message = refusal(source, approach)
    assert "4-bit or 8-bit" in message and "bitsandbytes" in message
    line = next(
        i for i, text in enumerate(source.splitlines(), 1) if "from_pretrained('gpt2'," in text
    )
    assert f"script.py:{line}:" in message
    assert "load the model in full precision" in message


def test_weights_loaded_by_a_helper_are_a_reload():
    """dino-style: `utils.load_pretrained_weights(model, path)` fills the model after it
    is built; a feature extractor returning a preallocated tensor is no evaluation."""
    source = HEADER + (
        "import utils\n\n"
        "def extract_features(model, loader):\n"
        "    feats = None\n"
        "    for x, _ in loader:\n"
        "        out = model(x)\n"
        "        if feats is None:\n"
        "            feats = torch.zeros(8, out.shape[-1])\n"
        "    return feats\n\n"
        "model = Net()\n"
        "utils.load_pretrained_weights(model, 'w.pth', 'teacher')\n"
        "model.eval()\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "features = extract_features(model, loader)\n"
        "torch.save(features, 'feats.pt')\n"
    )
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    assert fit_line(text) > lines.index("utils.load_pretrained_weights(model, 'w.pth', 'teacher')")
    assert fit_line(text) < lines.index("features = extract_features(model, loader)")
    assert "eval_func" not in text


def test_tokenizers_and_loaded_tensors_are_not_models():
    source = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        "tokenizer = AutoTokenizer.from_pretrained('gpt2')\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2')\n"
        "bank = torch.load('bank.pt')\n"
        "bank = bank.cuda()\n"
        "out = model.generate(**tokenizer(['hi'], return_tensors='pt'))\n"
        "print(tokenizer.decode(out[0]), bank.shape)\n"
    )
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert "quantization.fit(model," in text
    # bf16 has no batch here (no loader, no evaluation): refused, not a fit that keeps fp32
    assert "needs a batch" in refusal(source, "bf16")


def test_a_script_whose_training_loop_cannot_be_read_is_refused():
    """It trains: a fit where the model is built would quantize the untrained model."""
    source = HEADER + (
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "x = torch.randn(8, 4)\n"
        "loss = model(x).sum()\n"
        "loss.backward()\n"
        "torch.save(model.state_dict(), 'm.pt')\n"
    )
    message = refusal(source, "ptq-dynamic")
    assert "trains the model (.backward() at line" in message
    assert "a post-training fit must follow training" in message


def test_training_in_a_function_nothing_calls_is_refused():
    """An engine.py: train_one_epoch() is called by another file of the project."""
    source = HEADER + (
        "def train_one_epoch(model, loader, optimizer):\n"
        "    for x, y in loader:\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        optimizer.zero_grad()\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
    )
    message = refusal(source, "ptq-dynamic")
    assert "training runs in train_one_epoch(), which nothing in this file calls" in message
    assert "run the tool on the script that calls train_one_epoch()" in message


def test_loaders_kept_in_a_dict_calibrate_and_a_dict_of_results_is_no_metric():
    """transfer-learning style: `dataloaders = {x: DataLoader(...) for x in [...]}`, a
    train_model() that reloads the best weights and returns the model, assigned by its
    caller; a test function that returns a dict of results per dataset is not tuned on."""
    source = HEADER + (
        "from collections import OrderedDict\n\n"
        "def do_test(model, loaders):\n"
        "    results = OrderedDict()\n"
        "    for name, loader in loaders.items():\n"
        "        results[name] = sum(model(x).sum().item() for x, _ in loader)\n"
        "    return results\n\n"
        "def train_model(model, optimizer, epochs):\n"
        "    for epoch in range(epochs):\n"
        "        for phase in ['train', 'val']:\n"
        "            for x, y in dataloaders[phase]:\n"
        "                loss = nn.functional.cross_entropy(model(x), y)\n"
        "                optimizer.zero_grad()\n"
        "                loss.backward()\n"
        "                optimizer.step()\n"
        "        torch.save(model.state_dict(), 'best.pt')\n"
        "    model.load_state_dict(torch.load('best.pt'))\n"
        "    return model\n\n"
        "data = TensorDataset(torch.randn(8, 4), torch.zeros(8).long())\n"
        "dataloaders = {x: DataLoader(data, batch_size=4) for x in ['train', 'val']}\n"
        "net = Net()\n"
        "net = train_model(net, torch.optim.SGD(net.parameters(), lr=0.1), 2)\n"
        "print(do_test(net, dataloaders))\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert 'calib_dataloader=dataloaders["train"]' in text
    assert "eval_func" not in text  # do_test() returns a dict, not a number
    lines = text.splitlines()
    # train_model() returns the reloaded model: quantized once, where the caller has it
    assert (
        fit_line(text)
        == lines.index("net = train_model(net, torch.optim.SGD(net.parameters(), lr=0.1), 2)") + 1
    )


def test_training_task_after_task_is_quantized_once_after_the_last():
    """A loop over tasks that trains and evaluates each in turn: the model is final after
    the loop, not after the first task's training."""
    source = HEADER + (
        "def train(model, loader, optimizer):\n"
        "    for epoch in range(2):\n"
        "        for x, y in loader:\n"
        "            loss = nn.functional.cross_entropy(model(x), y)\n"
        "            optimizer.zero_grad()\n"
        "            loss.backward()\n"
        "            optimizer.step()\n\n"
        "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "tasks = {t: DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4) for t in ['a', 'b']}\n"
        "for name, loader in tasks.items():\n"
        "    train(model, loader, optimizer)\n"
        "    print(name, evaluate(model, loader))\n"
        "torch.save(model.state_dict(), 'model.pt')\n"
    )
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    assert fit_line(text) > lines.index("    print(name, evaluate(model, loader))")
    assert not lines[fit_line(text)].startswith(" ")
    assert fit_line(text) < lines.index("torch.save(model.state_dict(), 'model.pt')")


@pytest.mark.parametrize("approach", ["pruning", "qat"])
def test_bitsandbytes_models_are_refused_for_training_techniques_too(approach):
    source = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2', load_in_4bit=True)\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)\n"
        "loader = torch.utils.data.DataLoader([{'input_ids': torch.ones(1, 8).long()}])\n"
        "for epoch in range(1):\n"
        "    for batch in loader:\n"
        "        loss = model(**batch, labels=batch['input_ids']).loss\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "        optimizer.zero_grad()\n"
    )
    message = refusal(source, approach)
    assert "script.py:4:" in message and "4-bit or 8-bit" in message
    # distillation changes the loss only: it works on the 4-bit model
    _, report = rewrite(source, "distillation")
    assert report.status is Status.TRANSFORMED, report.message


def test_an_epoch_run_through_a_loss_scaler_is_no_evaluation():
    """timm style: `loss_scaler(loss, optimizer, ...)` runs the backward and the step, so
    train_one_epoch() trains although it calls no .backward(); it returns a number, but
    it is no eval_func (dynamic quantization then needs none)."""
    train_one_epoch = (
        "def train_one_epoch(model, data, optimizer, loss_scaler):\n"
        "    for x, y in data:\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        loss_scaler(loss, optimizer, parameters=model.parameters())\n"
        "    return loss.item()\n\n"
    )
    script = (
        HEADER
        + train_one_epoch
        + "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "model = Net()\n"
        "model.load_state_dict(torch.load('net.pt', weights_only=True))\n"
        "print(train_one_epoch(model, loader, None, None))\n"
        "torch.save(model.state_dict(), 'int8.pt')\n"
    )
    text, report = rewrite(script, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert "train_one_epoch(candidate" not in text and "eval_func" not in text


BF16_NO_EVALUATION = (
    HEADER
    + """
{loader}model = Net()
model.load_state_dict(torch.load("trained.pt"))
model.eval()
torch.save(model, "served.pt")
"""
)


def test_bf16_without_an_evaluation_measures_on_a_loader_in_reach():
    """The runtime converts only the modules it measures faster: with nothing that
    evaluates the model, the fit takes its batch from the script's loader."""
    loader = "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8)), batch_size=4)\n"
    text, report = rewrite(BF16_NO_EVALUATION.format(loader=loader), "bf16")
    assert report.status is Status.TRANSFORMED
    call = text[text.index("mix_precision.fit(") :]
    assert "calib_dataloader=loader" in call.split("# neural-coder")[0]
    again, second = rewrite(text, "bf16")
    assert second.status is Status.UNCHANGED and again == text


def test_bf16_without_an_evaluation_or_a_loader_is_refused():
    """Without a batch the runtime would keep fp32: a rewrite that does nothing when run."""
    message = refusal(BF16_NO_EVALUATION.format(loader=""), "bf16")
    assert "needs a batch" in message and "no DataLoader is in reach" in message
    assert "--target inc" in message


def test_bf16_for_inc_converts_without_a_batch():
    options = build_options("bf16", "inc", {}, {})
    text, report = rewrite_source(Path("script.py"), BF16_NO_EVALUATION.format(loader=""), options)
    assert report.status is Status.TRANSFORMED and "mix_precision.fit(" in text
    assert "calib_dataloader" not in text


TRAIN_THEN = HEADER + (
    "model = Net()\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
    "for epoch in range(2):\n"
    "    for x, y in loader:\n"
    "        optimizer.zero_grad()\n"
    "        loss = nn.functional.cross_entropy(model(x), y)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
)


@pytest.mark.parametrize(
    "after, reload",
    [
        # a fresh model with the best weights loaded into it: a reload
        ("model = Net()\nmodel.load_state_dict(torch.load('best.pt'))\n", True),
        ("model = torch.load('best_model.pt', weights_only=False)\n", True),
        ("model = load_model('best.pt')\n", True),
        # a constructor or factory builds a new, untrained model: no reload
        ("model = Net()\n", False),
        ("model = build()\n", False),
    ],
)
def test_only_a_load_of_weights_after_training_is_a_reload(after, reload):
    """The fit follows a reload of trained weights; a model built anew after training
    (`model = init_model()`) is another, untrained model: the fit stays with the
    trained one, and is refused when nothing reads that one before the rebuild."""
    helpers = "def build():\n    return Net()\n\ndef load_model(path):\n    return torch.load(path, weights_only=False)\n\n"
    source = TRAIN_THEN.replace("model = Net()\n", helpers + "model = Net()\n", 1)
    tail = "print(evaluate(model, loader))\n"
    if reload:
        text, report = rewrite(source + after + tail, "ptq-dynamic")
        assert report.status is Status.TRANSFORMED, report.message
        lines = text.splitlines()
        assert fit_line(text) > max(
            i
            for i, line in enumerate(lines)
            if line.startswith("model =") and "neural-coder" not in line
        )
        return
    message = refusal(source + after + tail, "ptq-dynamic")
    assert "thrown away" in message and "builds a new, untrained model" in message
    assert f"({after.strip()})" in message
    # read before the rebuild: the fit goes there
    text, report = rewrite(source + tail + after + tail, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    assert fit_line(text) < len(lines) - 1 - lines[::-1].index(after.strip())


@pytest.mark.parametrize(
    "again, reload",
    [("'./trained'", True), ("args.model_name", False)],
)
def test_from_pretrained_after_training_is_a_reload_unless_it_is_the_base_model(again, reload):
    """`from_pretrained(output_dir)` after training loads the trained weights back;
    `from_pretrained(args.model_name)` again loads the untrained base model."""
    source = (
        "import argparse\n"
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "\n"
        "args = argparse.Namespace(model_name='tiny')\n"
        "model = AutoModelForSequenceClassification.from_pretrained(args.model_name)\n"
        "optimizer = torch.optim.AdamW(model.parameters())\n"
        "for batch in [dict(input_ids=torch.ones(2, 4).long(), labels=torch.zeros(2).long())]:\n"
        "    loss = model(**batch).loss\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "model.save_pretrained('./trained')\n"
        f"model = AutoModelForSequenceClassification.from_pretrained({again})\n"
        "model.save_pretrained('./final')\n"
    )
    if reload:
        text, report = rewrite(source, "ptq-dynamic")
        assert report.status is Status.TRANSFORMED, report.message
        assert fit_line(text) > text.splitlines().index(
            f"model = AutoModelForSequenceClassification.from_pretrained({again})"
        )
    else:
        text, report = rewrite(source, "ptq-dynamic")
        assert report.status is Status.TRANSFORMED, report.message
        assert fit_line(text) < text.splitlines().index("model.save_pretrained('./trained')")


LOADER_BUILT_AFTER_THE_MODEL = (
    HEADER
    + """
model = Net()
model.load_state_dict(torch.load("trained.pt"))
model = model.to("cpu")
model.eval()
{between}loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8)), batch_size=4)
with torch.no_grad():
    for x, _ in loader:
        print(model(x).argmax(1))
"""
)


@pytest.mark.parametrize("approach", ["ptq-static", "bf16"])
def test_data_built_after_the_model_moves_the_fit_to_where_the_model_first_runs(approach):
    text, report = rewrite(LOADER_BUILT_AFTER_THE_MODEL.format(between=""), approach)
    assert report.status is Status.TRANSFORMED, report.message
    fit = text.index(".fit(")
    assert text.index("loader = DataLoader(") < fit < text.index("with torch.no_grad():\n    for x")
    assert "calib_dataloader=loader" in text[fit:]
    again, second = rewrite(text, approach)
    assert second.status is Status.UNCHANGED and again == text


@pytest.mark.parametrize(
    ("between", "why"),
    [
        # the weights saved before the data exists: a later fit would save fp32
        ('torch.save(model.state_dict(), "served.pt")\n', "saved"),
        # handed to a function, which may run it
        ("print(count_flops(model))\n", "passed on"),
    ],
)
def test_the_fit_does_not_move_past_a_use_of_the_model(between, why):
    message = refusal(LOADER_BUILT_AFTER_THE_MODEL.format(between=between), "ptq-static")
    assert "no DataLoader is in reach" in message, why


def test_a_dynamic_fit_stays_after_the_load():
    """Dynamic quantization needs no data: it stays where the model is ready."""
    text, report = rewrite(LOADER_BUILT_AFTER_THE_MODEL.format(between=""), "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert text.index(".fit(") < text.index("model = model.to(")


INFERENCE_UNDER_MAIN_GUARD = """\
if __name__ == "__main__":
    model = Net()
    model.load_state_dict(torch.load("net.pt", weights_only=True))
    model.eval()
    classify = lambda x: model(x).argmax(1)
    print(classify(torch.randn(3, 4)))
"""


@pytest.mark.parametrize("approach", ["ptq-dynamic", "qat"])
def test_a_model_built_under_the_main_guard_is_fitted_there(approach):
    """`if __name__ == "__main__":` holds the whole inference script (the model handed on
    to a `pipeline(...)` or a closure): the guard is no branch that the fit must follow.
    The fit was placed after the whole `if`, and refused as "the quantized model would be
    thrown away: nothing after line 1 evaluates, saves or returns model"."""
    if approach == "qat":
        assert "no training loop" in refusal(HEADER + INFERENCE_UNDER_MAIN_GUARD, approach)
        return
    text, report = rewrite(HEADER + INFERENCE_UNDER_MAIN_GUARD, approach)
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    load = next(i for i, line in enumerate(lines) if "model.load_state_dict(" in line)
    assert load < fit_line(text) < len(lines) - 3 == lines.index("    model.eval()", load)


def test_a_model_built_on_a_branch_of_the_main_guard_is_still_fitted_after_the_branch():
    text, report = rewrite(
        HEADER
        + INFERENCE_UNDER_MAIN_GUARD.replace(
            '    model.load_state_dict(torch.load("net.pt", weights_only=True))\n',
            "    if RESUME:\n"
            '        model.load_state_dict(torch.load("net.pt", weights_only=True))\n',
        ),
        "ptq-dynamic",
    )
    assert report.status is Status.TRANSFORMED, report.message
    lines = text.splitlines()
    branch = lines.index("    if RESUME:")
    assert branch < fit_line(text) < len(lines) - 3 == lines.index("    model.eval()", branch)


GENERATING_EVALUATION = """\
import torch
from torch.utils.data import DataLoader
from transformers import BartConfig, BartForConditionalGeneration


def token_accuracy(model, loader):
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in loader:
            out = model.generate(input_ids=batch["input_ids"], max_new_tokens=4)
            hits += (out[:, 1:5] == batch["labels"]).sum().item()
            total += batch["labels"].numel()
    return hits / total


model = BartForConditionalGeneration.from_pretrained("bart_ckpt")
loader = DataLoader(rows, batch_size=8)
print(token_accuracy(model, loader))
"""


def test_bf16_tuned_by_an_evaluation_that_generates_also_measures_on_its_loader():
    """Every forward call inside `generate()` carries the generation's state, so the
    runtime records no call to measure bf16 on: the fit ran and kept the fp32 model ("no
    batch to measure the bf16 speed on"). The evaluation's loader gives it the batch."""
    text, report = rewrite(GENERATING_EVALUATION, "bf16")
    assert report.status is Status.TRANSFORMED, report.message
    call = text[text.index("mix_precision.fit(") :].split("# neural-coder")[0]
    assert "calib_dataloader=loader" in call
    assert "eval_func=lambda candidate: token_accuracy(candidate, loader)" in call


def test_bf16_tuned_by_an_evaluation_that_runs_the_forward_records_its_call():
    text, report = rewrite(
        GENERATING_EVALUATION.replace(
            'model.generate(input_ids=batch["input_ids"], max_new_tokens=4)',
            "model(**batch).logits.argmax(-1)",
        ),
        "bf16",
    )
    assert report.status is Status.TRANSFORMED, report.message
    assert "calib_dataloader" not in text


def test_a_model_built_with_from_config_is_the_model_to_convert():
    """`AutoModelForSequenceClassification.from_config(config)` was taken for a config
    ("config" in the constructor's name), so an inline evaluation was refused with "no
    model was found"; the class, not its constructor, says what is built."""
    source = """\
import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import AutoModelForSequenceClassification, BertConfig

config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
model = AutoModelForSequenceClassification.from_config(config)
loader = DataLoader(TensorDataset(torch.randint(0, 10, (8, 4)), torch.ones(8, 4)), batch_size=4)
model.eval()
with torch.no_grad():
    for ids, mask in loader:
        print(model(ids, attention_mask=mask).logits)
"""
    text, _ = rewrite(source, "bf16")
    assert "mix_precision.fit(" in text and "model, MixedPrecisionConfig()" in text


DATA_PARALLEL = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
net = nn.DataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for (x,) in loader:
    net(x).sum().backward()
    opt.step()
torch.save(net.module.state_dict(), "net.pt")
"""


@pytest.mark.parametrize("approach", ["ptq-dynamic", "ptq-static", "bf16"])
def test_a_data_parallel_wrap_is_converted_inside(approach):
    """`nn.DataParallel(model)` was taken for a lone layer by ptq-dynamic ("net is one layer
    itself"), and the fit converted the wrap, whose `.module.state_dict()` then carried no
    int8 recipe for a reload: the fit converts `net.module` and puts it back inside."""
    text, report = rewrite(DATA_PARALLEL, approach)
    assert report.status is Status.TRANSFORMED, report.message
    assert "quantized_model = " in text and ".fit(net.module," in " ".join(text.split()).replace(
        "( ", "("
    )
    assert "net.module = quantized_model if quantized_model is not None else net.module" in text
