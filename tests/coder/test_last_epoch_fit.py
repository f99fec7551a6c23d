"""A script that evaluates the model inside each epoch, after that epoch's training, and
reads it nowhere after the epoch loop: the post-training fit goes into the loop, guarded
to run in the last epoch only, just before that evaluation. Refused, with the line and
a way out, when the last epoch may not reach the evaluation, when the last epoch cannot
be told from the loop, or when training goes on after the evaluation: then the fit goes
after the epoch loop and saves the compressed model (tests/coder/test_saved_fit.py), and
the report says why the last epoch was not the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import script_path

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


def main(num_epochs=2):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)
    val_loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.ones(8).long()), batch_size=4)
"""

TRAIN = """\
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
"""


def script(epoch_loop: str, body: str, before: str = "", after_train: str = "") -> str:
    """`main()` whose epoch loop `epoch_loop` trains (after `before`), then runs `body`."""
    return HEADER + f"    {epoch_loop}\n" + before + TRAIN + after_train + body + "\n\nmain()\n"


EVAL = "        print(epoch, evaluate(model, val_loader))\n"


def rewrite(source: str, approach: str = "ptq-static", target: str = "runtime"):
    return rewrite_source(Path("script.py"), source, build_options(approach, target, {}, {}))


def refusal(source: str, approach: str = "ptq-static") -> str:
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, approach)
    return str(refused.value)


def saved_after_the_loop(source: str, approach: str = "ptq-static") -> str:
    """The fit went after the epoch loop, followed by a save of its result; the report's
    notes, which say why it is not in the last epoch."""
    text, report = rewrite(source, approach)
    assert report.status is Status.TRANSFORMED, report.message
    assert "if epoch ==" not in text
    lines = code_lines(text)
    loop = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("    for epoch") or line.startswith("    while")
    )
    fit = line_of(text, ".fit(")
    assert fit > loop and lines[fit].startswith("    quantized_model = "), text
    assert 'quantized_model.save("neural_coder_output/' in text
    return "\n".join(report.placed)


def code_lines(text: str) -> list[str]:
    """The lines of `text` without the tool's marker comments."""
    return [line.removesuffix("  # neural-coder") for line in text.splitlines()]


def line_of(text: str, wanted: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if wanted in line)


@pytest.mark.parametrize(
    ("loop", "guard"),
    [
        ("for epoch in range(num_epochs):", "if epoch == num_epochs - 1:"),
        ("for epoch in range(1, num_epochs + 1):", "if epoch == num_epochs:"),
        ("for epoch in range(start_epoch, num_epochs):", "if epoch == num_epochs - 1:"),
        ("for epoch in range(3):", "if epoch == 2:"),
        (
            "for epoch in range(start_epoch, start_epoch + 200):",
            "if epoch == start_epoch + 200 - 1:",
        ),
        ("for epoch in range(num_epochs or 1):", "if epoch == (num_epochs or 1) - 1:"),
        ("for epoch in range(num_epochs * 2):", "if epoch == num_epochs * 2 - 1:"),
    ],
)
@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
def test_the_fit_runs_in_the_last_epoch_before_its_evaluation(loop, guard, approach):
    source = script(loop, EVAL).replace(
        "def main(num_epochs=2):", "def main(num_epochs=2, start_epoch=0):"
    )
    text, report = rewrite(source, approach)
    assert report.status is Status.TRANSFORMED, report.message
    lines = code_lines(text)
    fit = line_of(text, ".fit(")
    # the guard right above the fit, in the epoch body, after training, before evaluate()
    assert lines[fit - 1].strip() == guard and lines[fit - 1].startswith("        if ")
    assert line_of(text, "optimizer.step()") < fit - 1 < line_of(text, "print(epoch, evaluate(")
    assert any(
        x == "            model = quantized_model if quantized_model is not None else model"
        for x in lines[fit : fit + 16]
    )
    # tuned with the script's own evaluation, as it is called in the loop
    assert "eval_func=lambda candidate: evaluate(candidate, val_loader)" in text
    assert any("the fit runs in the last epoch" in p for p in report.placed), report.placed
    # a second run changes nothing
    again, second = rewrite(text, approach)
    assert again == text and second.status is not Status.TRANSFORMED


def test_static_calibrates_with_the_loader_the_evaluation_reads():
    text, _ = rewrite(script("for epoch in range(num_epochs):", EVAL))
    assert "calib_dataloader=val_loader" in text


def test_an_inline_evaluation_loop_after_model_eval_is_the_place():
    """accelerate nlp_example style: `model.eval()` and a loop under torch.no_grad()."""
    body = (
        "        model.eval()\n"
        "        correct = 0\n"
        "        for x, y in val_loader:\n"
        "            with torch.no_grad():\n"
        "                correct += (model(x).argmax(1) == y).sum().item()\n"
        "        print(f'epoch {epoch}: {correct}')\n"
    )
    text, report = rewrite(script("for epoch in range(num_epochs):", body), "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    fit = line_of(text, ".fit(")
    assert fit - 1 == line_of(text, "if epoch == num_epochs - 1:")
    assert line_of(text, "optimizer.step()") < fit < line_of(text, "        model.eval()")


def test_a_checkpoint_saved_before_the_evaluation_keeps_the_trained_fp32_weights():
    body = "        torch.save(model.state_dict(), 'last.pt')\n" + EVAL
    text, report = rewrite(script("for epoch in range(num_epochs):", body))
    assert report.status is Status.TRANSFORMED, report.message
    assert (
        line_of(text, "torch.save(")
        < line_of(text, ".fit(")
        < line_of(text, "print(epoch, evaluate(")
    )


def test_a_model_only_saved_in_the_loop_is_fitted_and_saved_after_the_loop():
    source = script(
        "for epoch in range(num_epochs):", "        torch.save(model.state_dict(), 'last.pt')\n"
    )
    notes = saved_after_the_loop(source)
    assert "nothing after the statement at line" in notes and "reads model" in notes


def test_a_global_model_evaluated_by_a_function_that_reads_it():
    """kuangliu/pytorch-cifar style at module level: train(epoch); test(epoch)."""
    source = (
        HEADER.split("def main")[0] + "model = Net()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)\n"
        "\n"
        "def test(epoch):\n"
        "    print(epoch, evaluate(model, loader))\n"
        "\n"
        "for epoch in range(0, 2):\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(x), y)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "    test(epoch)\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert code_lines(text)[line_of(text, ".fit(") - 1] == "    if epoch == 1:"
    assert line_of(text, ".fit(") < line_of(text, "    test(epoch)")


@pytest.mark.parametrize(
    ("loop", "before", "after_train", "body", "why"),
    [
        # early stopping: the last epoch may never run
        (
            "for epoch in range(num_epochs):",
            "",
            "",
            EVAL + "        if epoch > 5:\n            break\n",
            "can end the epoch loop early",
        ),
        # a step budget ends training, not the epochs
        (
            "for epoch in range(num_epochs):",
            "",
            "            steps += 1\n            if steps >= 5:\n                break\n",
            EVAL,
            "step budget",
        ),
        # a `continue` that can skip the evaluation
        (
            "for epoch in range(num_epochs):",
            "",
            "",
            "        if epoch < 1:\n            continue\n" + EVAL,
            "can skip the evaluation",
        ),
        # the last epoch cannot be told from the loop
        ("for epoch in [0, 1]:", "", "", EVAL, "not range(N)"),
        ("for epoch in range(0, num_epochs, 2):", "", "", EVAL, "not range(N)"),
        (
            "for epoch, _ in enumerate(range(num_epochs)):",
            "",
            "",
            EVAL,
            "does not bind one epoch number",
        ),
        ("while epoch < num_epochs:", "        epoch += 1\n", "", EVAL, "while loop"),
        (
            "for epoch in range(num_epochs):",
            "        num_epochs = 3\n",
            "",
            EVAL,
            "changes num_epochs",
        ),
        # evaluated only on some epochs
        (
            "for epoch in range(num_epochs):",
            "",
            "",
            "        if epoch % 5 == 0:\n    " + EVAL,
            "only on some epochs",
        ),
    ],
)
def test_unsound_last_epoch_placements_fit_after_the_loop_and_save(
    loop, before, after_train, body, why
):
    source = script(loop, body, before, after_train).replace(
        "    val_loader = ", "    steps = epoch = 0\n    val_loader = "
    )
    notes = saved_after_the_loop(source)
    assert "note: no fit in the last epoch: " in notes and why in notes, notes


def test_a_return_from_inside_the_epoch_loop_is_still_refused():
    """The fit after the loop might never run, and the last epoch may not be reached."""
    body = EVAL + "        if epoch > 5:\n            return\n"
    source = script("for epoch in range(num_epochs):", body)
    message = refusal(source)
    assert "returns from inside the epoch loop" in message, message
    assert "thrown away" in message and "torch.save(model.state_dict(), path)" in message
    assert message.startswith("script.py:")


def test_training_after_the_evaluation_fits_after_the_loop():
    """Train, evaluate, then step the optimizer again (a function that trains) in each
    epoch: the fit would be trained over."""
    source = (
        HEADER.replace(
            "def main(",
            "def apply_swa(model, optimizer):\n    optimizer.step()\n\n\ndef main(",
        )
        + "    for epoch in range(num_epochs):\n"
        + TRAIN
        + EVAL
        + "        apply_swa(model, optimizer)\n"
        + "\n\nmain()\n"
    )
    notes = saved_after_the_loop(source)
    line = source.splitlines().index("        apply_swa(model, optimizer)") + 1
    assert f"training goes on at line {line}" in notes, notes


def test_evaluated_before_training_in_each_epoch_fits_after_the_loop():
    source = HEADER + "    for epoch in range(num_epochs):\n" + EVAL + TRAIN + "\n\nmain()\n"
    notes = saved_after_the_loop(source)
    assert "no fit in the last epoch" not in notes  # no evaluation after training in it


def test_a_read_after_the_loop_keeps_the_fit_after_the_loop():
    source = script("for epoch in range(num_epochs):", EVAL).replace(
        "\n\nmain()\n", "\n    torch.save(model.state_dict(), 'final.pt')\n\n\nmain()\n"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert "if epoch ==" not in text
    assert line_of(text, ".fit(") > line_of(text, "print(epoch, evaluate(")


def test_the_accelerate_sample_is_fitted_in_its_last_epoch():
    text, report = rewrite(script_path("accelerate_loop.py").read_text(), "ptq-static")
    assert report.status is Status.TRANSFORMED, report.message
    guard = line_of(text, 'if epoch == config["num_epochs"] - 1:')
    assert guard + 1 == line_of(text, ".fit(")
    assert line_of(text, "lr_scheduler.step()") < guard < line_of(text, "        model.eval()")


EPOCH_FUNCTION = """\
def train_one_epoch(model, loader, optimizer, max_steps=None):
    model.train()
    for step, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
{stop}

"""


def epoch_function_script(stop: str = "", loop: str = "for epoch in range(num_epochs):") -> str:
    return (
        HEADER.replace("def main(", EPOCH_FUNCTION.format(stop=stop) + "\ndef main(")
        + f"    {loop}\n"
        + "        train_one_epoch(model, loader, optimizer)\n"
        + EVAL
        + "\n\nmain()\n"
    )


def test_training_in_an_epoch_function_then_evaluate_each_epoch():
    text, report = rewrite(
        epoch_function_script(loop='for epoch in trange(num_epochs, desc="epoch"):').replace(
            "import torch\n", "import torch\nfrom tqdm import trange\n", 1
        )
    )
    assert report.status is Status.TRANSFORMED, report.message
    fit = line_of(text, ".fit(")
    assert code_lines(text)[fit - 1] == "        if epoch == num_epochs - 1:"
    assert (
        line_of(text, "        train_one_epoch(model")
        < fit
        < line_of(text, "print(epoch, evaluate(")
    )


@pytest.mark.parametrize("exit", ["break", "return"])
def test_a_step_budget_in_the_epoch_function_fits_after_the_loop(exit):
    """A count kept across epochs (`state["step"]`) ends training, not the epochs: the
    fit goes after the loop, saved."""
    source = epoch_function_script(
        stop='        state["step"] += 1\n'
        f'        if max_steps is not None and state["step"] >= max_steps:\n            {exit}'
    ).replace("def train_one_epoch(", 'state = {"step": 0}\n\n\ndef train_one_epoch(')
    notes = saved_after_the_loop(source)
    line = source.splitlines().index(f"            {exit}") + 1
    assert f"line {line} ends training on a step budget" in notes, notes


@pytest.mark.parametrize("exit", ["break", "return"])
def test_a_cap_on_each_epoch_s_batches_is_kept(exit):
    """`if step >= max_steps: break` on the step loop's own index caps every epoch alike:
    the last epoch still trains, then evaluates."""
    text, report = rewrite(
        epoch_function_script(
            stop=f"        if max_steps is not None and step >= max_steps:\n            {exit}"
        )
    )
    assert report.status is Status.TRANSFORMED, report.message
    fit = line_of(text, ".fit(")
    assert code_lines(text)[fit - 1] == "        if epoch == num_epochs - 1:"
    assert (
        line_of(text, "        train_one_epoch(model")
        < fit
        < line_of(text, "print(epoch, evaluate(")
    )


def test_a_dry_run_break_that_only_shortens_each_epoch_is_kept():
    """`if args.dry_run: break` (pytorch/examples): each epoch still trains, then evaluates."""
    text, report = rewrite(epoch_function_script(stop="        if max_steps:\n            break"))
    assert report.status is Status.TRANSFORMED, report.message
    assert "if epoch == num_epochs - 1:" in text


def test_a_pipeline_that_trains_first_keeps_the_fit_after_training():
    """`pruning>ptq-static`: the pruning stage's on_epoch_end / on_train_end hooks must
    run before the fit, so the fit is not put inside the last epoch: it follows
    on_train_end after the loop, and saves the compressed model."""
    text, report = rewrite(script_path("epoch_eval_loop.py").read_text(), "pruning>ptq-static")
    assert report.status is Status.TRANSFORMED, report.message
    assert "if epoch ==" not in text
    assert (
        line_of(text, "callbacks.on_train_end()")
        < line_of(text, "quantization.fit(")
        < line_of(text, 'quantized_model.save("neural_coder_output/ptq-static")')
    )


def test_an_imported_validation_function_handed_the_model_is_an_evaluation():
    source = script(
        "for epoch in range(num_epochs):", "        acc = validate(val_loader, model)\n"
    ).replace("import torch\n", "import torch\nfrom utils import validate\n", 1)
    text, report = rewrite(source, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert line_of(text, "if epoch == num_epochs - 1:") + 1 == line_of(text, ".fit(")
    assert line_of(text, ".fit(") < line_of(text, "acc = validate(val_loader, model)")


def test_an_imported_call_that_is_no_evaluation_is_not_the_place():
    source = script("for epoch in range(num_epochs):", "        log_weights(model)\n").replace(
        "import torch\n", "import torch\nfrom utils import log_weights\n", 1
    )
    assert "no fit in the last epoch" not in saved_after_the_loop(source, "ptq-dynamic")


@pytest.mark.parametrize(
    "save",
    [
        "        torch.save({'state_dict': model.state_dict(), 'epoch': epoch}, 'checkpoint.pt')\n",
        "        save_checkpoint(model, 'checkpoint.pt')\n",
        "        keep_best(model, epoch)\n",
    ],
)
def test_a_training_checkpoint_after_the_evaluation_moves_the_fit_after_the_loop(save):
    """The last epoch's checkpoint (ImageNet-example style, or saved inside a helper) would
    hold int8 weights where a resume or a reload of the best model into fp32 expects the
    trained ones: the fit goes after the loop, once the checkpoints are written."""
    helpers = (
        "def save_checkpoint(model, path):\n    torch.save(model, path)\n\n\n"
        "def keep_best(net, epoch):\n    torch.save(net.state_dict(), f'best{epoch}.pt')\n\n\n"
    )
    source = script("for epoch in range(num_epochs):", EVAL + save).replace(
        "def main(", helpers + "def main("
    )
    notes = saved_after_the_loop(source)
    line = source.splitlines().index(save.rstrip("\n")) + 1
    assert f"line {line} saves the weights" in notes and "checkpoint would hold" in notes, notes


def test_a_checkpoint_of_the_unwrapped_fp32_module_is_kept():
    """torchvision references: `model_without_ddp.state_dict()` is the fp32 module the fit
    does not re-bind; the checkpoint stays fp32, the evaluation measures int8."""
    save = "        torch.save({'model': model_without_ddp.state_dict()}, 'checkpoint.pt')\n"
    source = script("for epoch in range(num_epochs):", EVAL + save).replace(
        "    optimizer = ", "    model_without_ddp = model\n    optimizer = "
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    assert line_of(text, ".fit(") < line_of(text, "print(epoch, evaluate(")


def test_an_evaluation_only_path_and_the_training_run_each_get_a_fit():
    """`if evaluate_only: print(evaluate(model, val_loader)); return` before training: the
    fit goes there, and into the last epoch of the training run."""
    source = script("for epoch in range(num_epochs):", EVAL).replace(
        "    for epoch in range(num_epochs):",
        "    if num_epochs == 0:\n        print(evaluate(model, val_loader))\n        return\n"
        "    for epoch in range(num_epochs):",
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    fits = [i for i, line in enumerate(text.splitlines()) if ".fit(" in line]
    assert len(fits) == 2, text
    assert fits[0] < line_of(text, "        print(evaluate(model, val_loader))")
    assert code_lines(text)[fits[1] - 1] == "        if epoch == num_epochs - 1:"
    again, _ = rewrite(text)
    assert again == text


CHECKPOINT_THEN_EVAL = (
    '        torch.save({"model": model.state_dict()}, f"{out_dir}/model_{epoch}.pth")\n' + EVAL
)


@pytest.mark.parametrize(
    ("body", "folder"),
    [
        (EVAL, '"neural_coder_output/ptq-static"'),
        # torchvision's references: a checkpoint each epoch, then the evaluation; the
        # checkpoint holds the fp32 weights, so the int8 model goes beside it
        (CHECKPOINT_THEN_EVAL, 'f"{out_dir}/neural_coder_ptq-static"'),
    ],
    ids=["evaluation-only", "checkpoint-then-evaluation"],
)
def test_the_last_epoch_fit_saves_the_model_it_evaluates(body, folder):
    # the int8 model was measured by the last evaluation, then lost: nothing after the
    # loop reads it and the epoch's checkpoints are written before the fit
    source = script("for epoch in range(num_epochs):", body).replace(
        "def main(num_epochs=2):", "def main(num_epochs=2, out_dir='.'):"
    )
    text, report = rewrite(source)
    assert report.status is Status.TRANSFORMED, report.message
    lines = code_lines(text)
    fit = line_of(text, ".fit(")
    save = line_of(text, "quantized_model.save(")
    assert lines[save].strip() == f"quantized_model.save({folder})"
    assert lines[save - 1].strip() == "if quantized_model is not None:"
    assert lines[fit - 1].strip() == "if epoch == num_epochs - 1:"
    assert fit < save < line_of(text, "print(epoch, evaluate(")
    assert any("nothing after the epoch loop saves model" in p for p in report.placed)
    again, second = rewrite(text)
    assert second.status is Status.UNCHANGED and again == text
