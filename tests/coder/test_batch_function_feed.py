"""Post-training fits on scripts that feed batches from a function, not a DataLoader
(`X, Y = get_batch('train')`, `x, y = train_loader.next_batch()`): calibration and the
bf16 timing batch are drawn at the fit from the same call, a held-out split preferred,
shaped so the runtime calls the model the way the loop does; the refusals where the
call cannot be made at the fit. Goldens: char_split_train.* (tests/coder/test_golden.py);
the rewritten sample run: tests/e2e/test_saved_fit_scripts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import script_path

SAMPLE = script_path("char_split_train.py").read_text()


def rewrite(source: str, approach: str = "ptq-static", target: str = "runtime", ptq=None):
    options = build_options(approach, target, {}, {"ptq": ptq or {}})
    return rewrite_source(Path("train.py"), source, options)


def changed(source: str, approach: str = "ptq-static", **kwargs) -> tuple[str, list[str]]:
    text, report = rewrite(source, approach, **kwargs)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite(text, approach, **kwargs)
    assert second.status is Status.UNCHANGED and again == text
    return text, report.placed


def refusal(source: str, approach: str = "ptq-static", target: str = "runtime") -> str:
    try:
        _, report = rewrite(source, approach, target)
    except NeuralCoderError as refused:
        return str(refused)
    assert report.status is Status.FAILED, report.status
    return report.message


def edited(*pairs: tuple[str, str], source: str = SAMPLE) -> str:
    for old, new in pairs:
        assert old in source, old
        source = source.replace(old, new)
    return source


def test_calibration_draws_the_held_out_split_of_the_batch_function():
    text, placed = changed(SAMPLE)
    assert 'calib_dataloader=((get_batch("val"),) for _ in range(100))' in text
    note = next(p for p in placed if p.startswith("calib_dataloader:"))
    assert "held-out call at line 62" in note and "calibration_sampling_size=100" in note


def test_the_count_follows_calibration_sampling_size():
    text, _ = changed(SAMPLE, ptq={"calibration_sampling_size": 24})
    assert 'calib_dataloader=((get_batch("val"),) for _ in range(24))' in text
    assert "calibration_sampling_size=[24]" in text


#: the sample without its evaluation: bf16 (which measures on an evaluation when the
#: script has one, here estimate_loss()) then times one batch of the function
NO_EVALUATION = (
    "        losses = estimate_loss()\n"
    "        print(f\"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}\")\n",
    '        print(f"step {iter_num}")\n',
)


def test_bf16_times_one_batch_of_the_function():
    source = edited(NO_EVALUATION)
    text, _ = changed(source, "bf16")
    assert 'calib_dataloader=((get_batch("val"),) for _ in range(1))' in text
    assert "eval_func" not in text
    tuned, _ = changed(SAMPLE, "bf16")
    assert "eval_func=evaluate_candidate" in tuned and "calib_dataloader" not in tuned


def test_a_model_called_with_its_inputs_only_gets_the_first_item():
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            "    logits, _ = model(X)\n    loss = logits.sum()\n    X, Y",
        )
    )
    text, _ = changed(source)
    assert 'calib_dataloader=(get_batch("val")[0] for _ in range(100))' in text


def test_without_a_held_out_call_the_training_call_is_copied():
    source = edited(('for split in ["train", "val"]', 'for split in ["train"]'))
    text, placed = changed(source)
    assert 'calib_dataloader=((get_batch("train"),) for _ in range(100))' in text
    assert any("the training loop's call at line 71" in p for p in placed)


def test_a_loader_object_that_may_be_none_is_passed_over_for_the_training_one():
    """llm.c style: `val_loader = None` unless a flag builds it; `model(x, y, flag=False)`."""
    source = edited(
        (
            "def get_batch(split):",
            "class Batches:\n    def __init__(self, source):\n        self.source = source\n\n"
            "    def next_batch(self):\n        return get_batch(self.source)\n\n\n"
            "def get_batch(split):",
        ),
        (
            "torch.manual_seed(0)\n",
            "torch.manual_seed(0)\nuse_val = False\n",
        ),
        (
            "iter_num = 0\n",
            "train_loader = Batches('train')\nval_loader = None\nif use_val:\n"
            "    val_loader = Batches('val')\n    x, y = val_loader.next_batch()\n"
            "iter_num = 0\n",
        ),
        ('X, Y = get_batch("train")\nwhile', "X, Y = train_loader.next_batch()\nwhile"),
        (
            '    logits, loss = model(X, Y)\n    X, Y = get_batch("train")',
            "    logits, loss = model(X, Y, return_all=False)\n    X, Y = train_loader.next_batch()",
        ),
        (
            "    def forward(self, idx, targets=None):",
            "    def forward(self, idx, targets=None, return_all=True):",
        ),
    )
    text, _ = changed(source)
    assert "calib_dataloader=((train_loader.next_batch(),) for _ in range(100))" in text


def test_an_argument_only_the_loop_binds_is_refused_with_why():
    source = edited(
        ('X, Y = get_batch("train")\nwhile True:', "for part in chunks():"),
        (
            '    logits, loss = model(X, Y)\n    X, Y = get_batch("train")',
            "    X, Y = get_batch(part)\n    logits, loss = model(X, Y)",
        ),
        ('for split in ["train", "val"]', 'for split in ["train"]'),
        (
            "iter_num = 0\n",
            "iter_num = 0\n\n\ndef chunks():\n    return ['train'] * max_iters\n\n\n",
        ),
    )
    message = refusal(source)
    assert "no DataLoader is in reach" in message
    assert (
        "batch call cannot feed it: get_batch(part) reads part, which only the loop binds"
        in message
    )
    bf16 = refusal(source, "bf16")
    assert "needs a batch" in bf16 and "get_batch(part) reads part" in bf16


@pytest.mark.parametrize(
    ("model_call", "batch"),
    [
        # the positional input is named by CharModel.forward(self, idx, targets=None)
        ("model(X, targets=Y)", '{"idx": X, "targets": Y}'),
        ("model(idx=X, targets=Y)", '{"idx": X, "targets": Y}'),
        ("model(targets=Y, idx=X)", '{"targets": Y, "idx": X}'),
        ("model(X, targets=Y, reduce=True)", '{"idx": X, "targets": Y}'),
    ],
)
def test_inputs_passed_by_keyword_are_fed_as_a_dict_of_the_same_keywords(model_call, batch):
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            f"    logits, loss = {model_call}\n    X, Y",
        ),
        (
            "def forward(self, idx, targets=None):",
            "def forward(self, idx, targets=None, reduce=True):",
        ),
    )
    text, placed = changed(source)
    loader = f'({batch} for X, Y in (get_batch("val") for _ in range(100)))'
    assert f"calib_dataloader={loader}" in text.replace("\n", "").replace("    ", "")
    assert any(f"batch(es) of {batch} from X, Y = get_batch(" in p for p in placed)
    bf16, _ = changed(edited(NO_EVALUATION, source=source), "bf16")
    assert 'for X, Y in (get_batch("val") for _ in range(1))' in bf16


def test_keyword_inputs_of_a_model_from_another_library_need_no_forward():
    """`model(input_ids=x, labels=y)` on a Hugging Face model: the keywords name themselves
    (the runtime leaves `labels` out of calibration, as for any dict batch)."""
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            "    logits, loss = model(input_ids=X, labels=Y)\n    X, Y",
        ),
        ("model = CharModel()", "model = AutoModelForCausalLM.from_config(config)"),
        (
            "import torch\n",
            "import torch\nfrom transformers import AutoConfig, AutoModelForCausalLM\n",
        ),
        ("torch.manual_seed(0)\n", "torch.manual_seed(0)\nconfig = AutoConfig.for_model('gpt2')\n"),
    )
    text, _ = changed(source)
    assert '{"input_ids": X, "labels": Y} for X, Y in (get_batch("val")' in text


def test_a_positional_input_next_to_keywords_needs_the_forward_that_names_it():
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            "    logits, loss = model(X, labels=Y)\n    X, Y",
        ),
        ("model = CharModel()", "model = AutoModelForCausalLM.from_config(config)"),
        (
            "import torch\n",
            "import torch\nfrom transformers import AutoConfig, AutoModelForCausalLM\n",
        ),
        ("torch.manual_seed(0)\n", "torch.manual_seed(0)\nconfig = AutoConfig.for_model('gpt2')\n"),
        NO_EVALUATION,
    )
    message = refusal(source)
    assert "passes X by position and labels=Y by keyword" in message
    assert "pass every input by keyword" in message


def test_a_keyword_input_the_batch_does_not_give_is_refused():
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            "    mask = X > 0\n    logits, loss = model(X, targets=mask)\n    X, Y",
        ),
        NO_EVALUATION,
    )
    message = refusal(source)
    assert "passes targets=mask, which is not an item of what line" in message


def test_items_out_of_order_are_refused():
    source = edited(
        ("    logits, loss = model(X, Y)\n    X, Y", "    logits, loss = model(Y, X)\n    X, Y"),
        NO_EVALUATION,
    )
    assert "not the leading items of what line 71 unpacks" in refusal(source)


@pytest.mark.parametrize("approach", ["ptq-static"])
def test_inc_needs_a_dataloader(approach):
    message = refusal(edited(NO_EVALUATION), approach, "inc")
    assert "INC's fit needs a DataLoader with a batch_size (use --target runtime)" in message


def test_a_differently_named_fetch_function_that_is_unpacked_feeds_the_fit():
    text, _ = changed(SAMPLE.replace("get_batch(", "fetch("))
    assert 'calib_dataloader=((fetch("val"),) for _ in range(100))' in text


def test_an_input_computed_by_another_call_is_no_batch_function():
    """`noisy = add_noise(X)` feeds the model: not a batch source, the plain refusal."""
    source = edited(
        (
            '    logits, loss = model(X, Y)\n    X, Y = get_batch("train")',
            '    noisy = add_noise(X)\n    logits, loss = model(noisy, Y)\n    X, Y = get_batch("train")',
        ),
        ("iter_num = 0\n", "iter_num = 0\n\n\ndef add_noise(x):\n    return x\n\n\n"),
        NO_EVALUATION,
    )
    message = refusal(source)
    assert "no DataLoader is in reach" in message and "batch call" not in message


def test_a_model_given_the_leading_items_gets_that_prefix():
    source = SAMPLE.replace("    return x, y\n", "    return x, y, ix\n").replace(
        "X, Y = get_batch(", "X, Y, _ = get_batch("
    )
    text, _ = changed(source)
    assert 'calib_dataloader=((get_batch("val")[:2],) for _ in range(100))' in text


@pytest.mark.parametrize(
    ("model_call", "loader"),
    [
        ("model(X.to(device), Y.to(device))", '((get_batch("val"),) for _ in range(100))'),
        (
            "model(X.to(device), targets=Y.cuda(non_blocking=True))",
            '({"idx": X, "targets": Y} for X, Y in (get_batch("val") for _ in range(100)))',
        ),
    ],
)
def test_inputs_moved_in_the_call_are_the_batch_items(model_call, loader):
    """The runtime moves each batch to the model's device: `X.to(device)` is `X`."""
    source = edited(
        ("    logits, loss = model(X, Y)\n    X, Y", f"    logits, loss = {model_call}\n    X, Y"),
        ("torch.manual_seed(0)\n", "torch.manual_seed(0)\ndevice = 'cpu'\n"),
    )
    text, _ = changed(source)
    assert f"calib_dataloader={loader}" in " ".join(text.split()).replace("( ", "(").replace(
        " )", ")"
    )


def test_the_forward_is_found_through_compile_and_ddp_wraps():
    """nanoGPT: `model = torch.compile(model)`, then `if ddp: model = DDP(model)`; the
    positional input of `model(X, targets=Y)` is still named by CharModel.forward."""
    source = edited(
        (
            "    logits, loss = model(X, Y)\n    X, Y",
            "    logits, loss = model(X, targets=Y)\n    X, Y",
        ),
        (
            "model = CharModel()\n",
            "model = CharModel()\nddp = False\nmodel = torch.compile(model)\nif ddp:\n"
            "    model = DDP(model)\n",
        ),
        (
            "import torch\n",
            "import torch\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n",
        ),
    )
    text, _ = changed(source)
    assert '{"idx": X, "targets": Y} for X, Y in (get_batch("val")' in " ".join(text.split())


@pytest.mark.parametrize("target", ["runtime", "inc"])
def test_where_no_batch_can_be_fed_the_evaluation_calibrates(target):
    """The script's evaluation (estimate_loss() draws its own batches) runs the prepared
    model once for calibration (`calib_func`, INC's name) when no loader or batch call
    can feed the fit: here INC, which needs a real DataLoader, and a model called with
    its inputs in another order than the batch call gives them."""
    source = (
        SAMPLE
        if target == "inc"
        else edited(
            ("    logits, loss = model(X, Y)\n    X, Y", "    logits, loss = model(Y, X)\n    X, Y")
        )
    )
    text, placed = changed(source, target=target)
    assert "calib_func=evaluate_candidate," in text and "eval_func=evaluate_candidate" in text
    assert "calib_dataloader" not in text
    assert any(p.startswith("calib_func: estimate_loss()") for p in placed)
