"""A post-training fit on a training script that reads nothing of the trained model after
training: the fit follows the training loop and saves the compressed model (beside the
script's checkpoints, under its main-process check, or where --save-dir says); the
refusals that stay (a return from inside the loop, a rebuilt model, a loop that never
ends, no calibration data, training in a function nothing calls). The reviewed rewrites
of the samples are goldens (tests/coder/test_golden.py); running them is
tests/e2e/test_saved_fit_scripts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import ConfigError, NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.revert import revert_source
from tests.conftest import run_cli, script_path

HEADER = """\
import os
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)
"""

STEP = """\
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
"""


def epoch_script(body: str = "", before: str = "", header: str = HEADER) -> str:
    """Train `model` for two epochs at module level, then `body` in each epoch."""
    return header + before + "for epoch in range(2):\n    for x, y in loader:\n" + STEP + body


def rewrite(source: str, approach: str = "ptq-dynamic", save_dir: str | None = None):
    options = build_options(approach, "runtime", {}, {"ptq": {"save_dir": save_dir}})
    return rewrite_source(Path("script.py"), source, options)


def saved(source: str, approach: str = "ptq-dynamic", save_dir: str | None = None):
    text, report = rewrite(source, approach, save_dir)
    assert report.status is Status.TRANSFORMED, report.message
    assert text.index("for epoch") < text.index(".fit(") < text.index("quantized_model.save(")
    again, second = rewrite(text, approach, save_dir)
    assert second.status is not Status.TRANSFORMED and again == text
    return text, report


def refusal(source: str, approach: str = "ptq-dynamic") -> str:
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, approach)
    return str(refused.value)


def test_the_fit_after_training_saves_to_the_default_folder_and_says_so():
    text, report = saved(epoch_script("    torch.save(model.state_dict(), 'last.pt')\n"))
    assert text.endswith(
        "model = quantized_model if quantized_model is not None else model  # neural-coder\n"
        "if quantized_model is not None:  # neural-coder\n"
        '    quantized_model.save("neural_coder_output/ptq-dynamic")  # neural-coder\n'
    )
    placed = "\n".join(report.placed)
    assert "saves the compressed model to 'neural_coder_output/ptq-dynamic'" in placed
    assert "neural_coder.runtime.load('neural_coder_output/ptq-dynamic'" in placed
    assert "quantization.fit + quantized_model.save(" in placed


@pytest.mark.parametrize(
    ("save", "folder"),
    [
        ("torch.save(model.state_dict(), os.path.join(out_dir, 'ckpt.pt'))",
         'os.path.join(out_dir, "neural_coder_ptq-dynamic")'),
        ("torch.save(model.state_dict(), './ckpt/last.pt')", '"./ckpt/neural_coder_ptq-dynamic"'),
        ("torch.save(model.state_dict(), os.path.join('runs', 'last.pt'))",
         '"runs/neural_coder_ptq-dynamic"'),
        ("torch.save(model.state_dict(), f'{out_dir}/ckpt.pt')",
         'f"{out_dir}/neural_coder_ptq-dynamic"'),
        ("torch.save(model.state_dict(), Path(out_dir) / 'ckpt.pt')",
         'f"{out_dir}/neural_coder_ptq-dynamic"'),
        # a folder built after the loop is out of reach of the save: the default
        ("torch.save(model.state_dict(), os.path.join(late_dir, 'ckpt.pt'))",
         '"neural_coder_output/ptq-dynamic"'),
    ],
)  # fmt: skip
def test_the_save_goes_beside_the_scripts_checkpoints(save, folder):
    source = epoch_script(f"    {save}\n", before="out_dir = 'out'\n") + "late_dir = 'late'\n"
    text, report = saved(source)
    assert f"    quantized_model.save({folder})  # neural-coder\n" in text
    if "neural_coder_output" not in folder:
        assert any("beside the checkpoint the script writes at line" in p for p in report.placed)


def test_save_dir_chooses_the_folder(tmp_path):
    text, report = saved(epoch_script(), save_dir="exported/int8")
    assert '    quantized_model.save("exported/int8")  # neural-coder\n' in text
    assert any("'exported/int8' (--save-dir)" in p for p in report.placed)
    script = tmp_path / "train.py"
    script.write_text(epoch_script())
    result = run_cli("optimize", script, "-a", "bf16", "--save-dir", "out/bf16", "--diff")
    # bf16 needs a batch: the loader in reach gives it
    assert result.exit_code == 0, result.output
    assert 'quantized_model.save("out/bf16")' in result.output


def test_an_empty_save_dir_is_a_usage_error():
    with pytest.raises(ConfigError, match="save_dir"):
        build_options("ptq-dynamic", None, {"ptq": {"save_dir": " "}}, {})


@pytest.mark.parametrize(
    ("setup", "check"),
    [
        ("master_process = int(os.environ.get('RANK', 0)) == 0\n", "master_process"),
        ("rank = int(os.environ.get('RANK', 0))\n", "rank == 0"),
        ("local_rank = int(os.environ.get('LOCAL_RANK', -1))\n", "local_rank in [-1, 0]"),
        ("import utils\n", "utils.is_main_process()"),
        ("ddp, rank = False, 0\n", "(not ddp or rank == 0)"),
        # checks that call the distributed API or an object's method
        ("import torch.distributed as dist\n", "dist.get_rank() == 0"),
        ("import torch.distributed\n", "torch.distributed.get_rank() == 0"),
        ("from torch.distributed import get_rank\n", "get_rank() in (-1, 0)"),
        ("import torch.distributed as dist\n", "(not dist.is_initialized() or dist.get_rank() == 0)"),
        ("accelerator = make_accelerator()\n", "accelerator.is_main_process"),
        ("accelerator = make_accelerator()\n", "accelerator.is_local_main_process"),
        ("trainer = make_trainer()\n", "trainer.is_world_process_zero()"),
        ("import torch_xla.core.xla_model as xm\n", "xm.is_master_ordinal()"),
        # the rank a launcher sets in the environment
        ("seed = 0\n", 'int(os.environ.get("RANK", 0)) == 0'),
        ("seed = 0\n", 'int(os.environ["LOCAL_RANK"]) in (-1, 0)'),
        ("seed = 0\n", 'os.getenv("RANK", "0") == "0"'),
    ],
)  # fmt: skip
def test_the_save_runs_under_the_scripts_main_process_check(setup, check):
    body = f"    if epoch % 2 == 0 and {check}:\n        print(epoch)\n"
    if check.startswith("("):  # a whole test of its own
        body = f"    if {check[1:-1]}:\n        print(epoch)\n"
    text, report = saved(epoch_script(body, before=setup))
    assert f"if quantized_model is not None and {check}:  # neural-coder\n" in text
    assert any(f"written only where {check} holds" in p for p in report.placed)


def test_a_rank_call_under_another_if_is_no_check_of_its_own():
    """`if ddp: ... if dist.get_rank() == 0:`: without a process group (ddp off) the
    call fails, so the save does not copy it."""
    body = "    if ddp:\n        if dist.get_rank() == 0:\n            print(epoch)\n"
    source = epoch_script(body, before="import torch.distributed as dist\nddp = False\n")
    text, _ = saved(source)
    assert "if quantized_model is not None:  # neural-coder\n" in text


def test_a_main_process_flag_set_after_the_loop_is_not_used():
    source = epoch_script() + "master_process = True\nif master_process:\n    print('done')\n"
    text, _ = rewrite(source)
    assert "if quantized_model is not None:  # neural-coder\n" in text


def test_a_function_that_trains_and_reads_nothing_after_saves_there():
    source = (
        HEADER + "\n\ndef main(args):\n"
        "    for epoch in range(2):\n        for x, y in loader:\n"
        + STEP.replace("        ", "            ")
        + "        if args.rank == 0:\n"
        "            torch.save(model.state_dict(), os.path.join(args.out, 'last.pt'))\n"
        "\n\nmain(None)\n"
    )
    text, _ = rewrite(source, "ptq-static")
    assert "calib_dataloader=loader" in text
    assert (
        "    if quantized_model is not None and args.rank == 0:  # neural-coder\n"
        '        quantized_model.save(os.path.join(args.out, "neural_coder_ptq-static"))'
    ) in text


@pytest.mark.parametrize("save_dir", [None, "exports/int8 model"])
def test_revert_removes_the_fit_and_the_save(save_dir):
    source = epoch_script("    torch.save(model.state_dict(), './ckpt/last.pt')\n")
    text, _ = saved(source, save_dir=save_dir)
    original, report = revert_source(Path("script.py"), text)
    assert original == source, report.message


def test_the_iteration_loop_sample_saves_under_master_process():
    text, report = rewrite(script_path("iteration_loop_train.py").read_text())
    assert report.status is Status.TRANSFORMED, report.message
    assert "if quantized_model is not None and master_process:" in text
    assert 'quantized_model.save(os.path.join(out_dir, "neural_coder_ptq-dynamic"))' in text


# -- the refusals that stay -------------------------------------------------------------
def test_a_return_from_inside_the_loop_is_refused():
    source = (
        HEADER + "\n\ndef main():\n"
        "    for epoch in range(2):\n        for x, y in loader:\n"
        + STEP.replace("        ", "            ")
        + "        if epoch > 5:\n            return\n\n\nmain()\n"
    )
    message = refusal(source)
    assert "thrown away" in message and "returns from inside the training loop" in message


def test_a_model_rebuilt_before_anything_reads_it_is_refused():
    source = epoch_script() + "model = Net()\nprint(model(torch.randn(1, 4)))\n"
    message = refusal(source)
    assert "builds a new, untrained model" in message, message


def test_a_while_true_loop_without_a_break_is_refused():
    source = HEADER + "while True:\n    for x, y in loader:\n" + STEP
    message = refusal(source)
    assert "never ends (while True with no break)" in message, message


def test_static_quantization_without_data_in_reach_is_refused():
    source = (
        HEADER.replace("loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8).long()), batch_size=4)", "def batches():\n    yield torch.randn(4, 4), torch.zeros(4).long()")
        + "for epoch in range(2):\n    for x, y in batches():\n" + STEP
    )  # fmt: skip
    assert "no DataLoader is in reach" in refusal(source, "ptq-static")
    saved(source)  # dynamic quantization needs none
    # a list of batches the loop iterates feeds the fit (tests/coder/test_listed_batches_calibration.py)
    listed = source.replace("for x, y in batches():", "for x, y in batch_list:").replace(
        "optimizer = ", "batch_list = list(batches())\noptimizer = ", 1
    )
    saved(listed, "ptq-static")


def test_training_in_a_function_nothing_calls_is_refused():
    """engine.py style: the caller, another file, holds the final model."""
    source = (
        HEADER + "\n\ndef train_one_epoch(model, loader, optimizer):\n"
        "    for x, y in loader:\n" + STEP.replace("        ", "        ")
    )
    assert "which nothing in this file calls" in refusal(source)
