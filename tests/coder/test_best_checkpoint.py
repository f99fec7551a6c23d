"""Reference-style training scripts (an epoch loop that keeps the best checkpoint, a
loader re-bound in the epoch loop for resuming, checkpoints only inside the loop, a
model built pretrained on one branch): the pruning schedule, the run length, the int8
model QAT ends with, and the default teacher."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError
from neural_coder.options import build_options
from neural_coder.report import Status

HEAD = """import shutil
import torch
def build_loader():
    return [(torch.randn(3, 4), torch.tensor([0, 1, 0]))] * 4
def train(loader, model, opt):
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
def validate(loader, model):
    with torch.no_grad():
        return sum(float((model(x).argmax(1) == y).float().mean()) for x, y in loader)
"""

HELPER_SAVE = (
    HEAD
    + """def save_checkpoint(state, is_best, filename="checkpoint.pth.tar"):
    torch.save(state, filename)
    if is_best:
        shutil.copyfile(filename, "model_best.pth.tar")
def main(epochs=3):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = build_loader()
    best_acc1 = 0
    for epoch in range(epochs):
        train(loader, model, opt)
        acc1 = validate(loader, model)
        is_best = acc1 > best_acc1
        best_acc1 = max(acc1, best_acc1)
        save_checkpoint({"state_dict": model.state_dict(), "best_acc1": best_acc1}, is_best)
main()
"""
)

INLINE_SAVE = (
    HEAD
    + """model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = build_loader()
best_val = None
for epoch in range(1, 4):
    train(loader, model, opt)
    val = validate(loader, model)
    if best_val is None or val > best_val:
        best_val = val
        torch.save(model.state_dict(), "best.pt")
"""
)

STEP_SAVE = """import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))] * 4
best_loss = 1e9
for epoch in range(3):
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 2 == 0 and loss.item() < best_loss:
            best_loss = loss.item()
            torch.save(model.state_dict(), "best.pt")
"""

# a last-epoch checkpoint that records the best accuracy is no best checkpoint
LAST_ONLY = (
    HEAD
    + """model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = build_loader()
best_acc1 = 0
for epoch in range(3):
    train(loader, model, opt)
    best_acc1 = max(validate(loader, model), best_acc1)
    torch.save({"state_dict": model.state_dict(), "best_acc1": best_acc1}, "last.pt")
"""
)

RESUMED_LOADER = """import torch
from accelerate import Accelerator
def main(resume_step=None, num_epochs=3):
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_dataloader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=2
    )
    model, opt, train_dataloader = accelerator.prepare(model, opt, train_dataloader)
    for epoch in range(num_epochs):
        if resume_step is not None and epoch == 0:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        else:
            active_dataloader = train_dataloader
        for step, (x, y) in enumerate(active_dataloader):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad()
main()
"""

NOTHING_AFTER = (
    HEAD
    + """def main():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = build_loader()
    for epoch in range(2):
        train(loader, model, opt)
        torch.save(model.state_dict(), "checkpoint.pt")
main()
"""
)

SAVED_THROUGH_AN_ALIAS = NOTHING_AFTER.replace(
    "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
    "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n    raw_model = model\n",
).replace("main()\n", '    torch.save(raw_model.state_dict(), "final.pt")\nmain()\n')

PRETRAINED_BRANCH = """import argparse
import torch
import torchvision.models as models
parser = argparse.ArgumentParser()
parser.add_argument("--pretrained", action="store_true")
def main():
    args = parser.parse_args()
    main_worker(None, args)
def main_worker(gpu, args):
    if args.pretrained:
        model = models.resnet18(pretrained=True)
    else:
        model = models.resnet18()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))]
    for epoch in range(2):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
main()
"""

# the weights are loaded in main_worker(), which main() calls higher up in the file
LOADED_IN_THE_WORKER = PRETRAINED_BRANCH.replace(
    """    if args.pretrained:
        model = models.resnet18(pretrained=True)
    else:
        model = models.resnet18()
""",
    """    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    if args.pretrained:
        model.load_state_dict(torch.load(args.pretrained))
""",
).replace('action="store_true"', 'default=""')


def _rewrite(text: str, approach: str, **pruning: object) -> tuple[str, list[str]]:
    options = build_options(approach, None, {"pruning": pruning} if pruning else {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, list(report.warnings)


def _flat(code: str) -> str:
    return "".join(code.split())


@pytest.mark.parametrize("text", [HELPER_SAVE, INLINE_SAVE])
def test_a_best_checkpoint_kept_at_epoch_ends_is_pruned_to_the_target_in_the_first_epoch(text):
    before = _flat(text)
    assert "//max(1" not in before
    out, warnings = _rewrite(text, "pruning")
    # min(80% of the run, the first epoch's last step)
    assert "min(int(0.8*(" in _flat(out) and "//max(1," in _flat(out)
    assert any("keeps the best checkpoint" in w and "--end-step" in w for w in warnings)


def test_a_best_checkpoint_kept_every_few_steps_is_a_warning_with_a_way_out():
    # no epoch end to reach the target by: the schedule stays, the warning says --end-step
    out, warnings = _rewrite(STEP_SAVE, "pruning")
    assert "end_step=max(1,int(0.8*(3*len(loader))))" in _flat(out)
    assert any("keeps the best checkpoint" in w and "--end-step" in w for w in warnings)


def test_a_last_checkpoint_that_records_the_best_metric_keeps_the_fitted_schedule():
    out, warnings = _rewrite(LAST_ONLY, "pruning")
    assert "min(" not in out and "int(0.8*(" in _flat(out)
    assert not any("best checkpoint" in w for w in warnings)


def test_end_step_given_is_kept_with_a_best_checkpoint():
    out, warnings = _rewrite(HELPER_SAVE, "pruning", end_step=5)
    assert "end_step=5" in out and "min(" not in out
    assert not any("best checkpoint" in w for w in warnings)


def test_a_loader_rebound_in_the_epoch_loop_for_resuming_gives_the_run_length():
    out, warnings = _rewrite(RESUMED_LOADER, "pruning")
    assert "int(0.8*(num_epochs*len(train_dataloader)))" in _flat(out)
    assert "fit_pruning_schedules(" in out
    assert not any("one-shot" in w for w in warnings)


def test_qat_saves_the_int8_model_when_nothing_reads_the_model_after_training():
    out, _ = _rewrite(NOTHING_AFTER, "qat")
    lines = [line.strip() for line in out.splitlines()]
    end = lines.index("compression_manager.callbacks.on_train_end()  # neural-coder")
    assert lines[end + 1] == 'compression_manager.save("neural_coder_output/qat")  # neural-coder'
    # pruning alone keeps the script's own checkpoints: they hold the masked weights
    pruned, _ = _rewrite(NOTHING_AFTER, "pruning")
    assert "compression_manager.save(" not in pruned


def test_qat_adds_no_save_when_the_script_saves_the_model_through_an_alias():
    out, _ = _rewrite(SAVED_THROUGH_AN_ALIAS, "qat")
    assert "compression_manager.save(" not in out


def _refusal(text: str) -> str:
    options = build_options("distillation", None, {}, {})
    with pytest.raises(AnalysisError) as refused:
        rewrite_source(Path("s.py"), text, options)
    assert "--teacher" in refused.value.hint
    return refused.value.message


def test_a_model_built_pretrained_on_one_branch_only_is_no_default_teacher():
    assert "requested only at line 11, when args.pretrained" in _refusal(PRETRAINED_BRANCH)
    # the default flag takes the pretrained branch: the copy teaches, with a note
    out, _ = _rewrite(
        PRETRAINED_BRANCH.replace('action="store_true"', "default=True"), "distillation"
    )
    assert "teacher_model = copy.deepcopy(model)" in out


def test_a_load_in_the_worker_function_is_seen_although_main_calls_it_earlier():
    message = _refusal(LOADED_IN_THE_WORKER)
    assert "trained weights are loaded only when args.pretrained" in message


NODE_GUARDED = (
    HEAD
    + """def main_worker(gpu, ngpus_per_node, args):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = build_loader()
    for epoch in range(2):
        train(loader, model, opt)
        if not args.multiprocessing_distributed or (
            args.multiprocessing_distributed and args.rank % ngpus_per_node == 0
        ):
            torch.save(model.state_dict(), "checkpoint.pt")
def main(args):
    main_worker(args.gpu, 1, args)
"""
)


@pytest.mark.parametrize("approach", ["qat", "ptq-dynamic"])
def test_the_saved_compressed_model_is_written_by_the_first_process_of_each_node(approach):
    out, _ = _rewrite(NODE_GUARDED, approach)
    lines = out.splitlines()
    save = next(i for i, line in enumerate(lines) if 'save("neural_coder_output/' in line)
    guard = "\n".join(lines[save - 4 : save])
    assert "args.rank % ngpus_per_node == 0" in guard
    assert lines[save - 1].strip() == "):  # neural-coder"  # the save runs under it
