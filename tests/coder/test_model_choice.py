"""Which model a training step trains when it calls several: the one whose parameters
the optimizer gets (also through a parameter-group helper or an optimizer factory);
a model the script freezes is a teacher, a loss module is no model at all, and a loop
that trains only auxiliary modules gets no hooks. The refusals name the line and the
way out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neural_coder.analysis import analyze, parse_source
from neural_coder.analysis.project import discover_project
from neural_coder.api import rewrite_source, rewrite_sources
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import SAMPLES

HEAD = """import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


def get_param_groups(model):
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    return [{"params": decay}, {"params": rest, "weight_decay": 0.0}]


def train(student, teacher, optimizer, loader):
    for x, y in loader:
        s = student(x)
        t = teacher(x)
        loss = ((s - t) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(loader):
    student = Net()
    teacher = Net()
"""


def loop_of(text: str):
    facts = analyze(parse_source(Path("s.py"), text))
    assert facts.loop is not None, facts.loop_error and facts.loop_error.message
    return facts.loop


@pytest.mark.parametrize(
    "setup",
    [
        # the optimizer gets the student through a helper that builds parameter groups
        "    optimizer = torch.optim.AdamW(get_param_groups(student))\n",
        "    groups = get_param_groups(student)\n    optimizer = torch.optim.SGD(groups, lr=0.1)\n",
        # or from a factory of another library, given the model
        "    from timm.optim import create_optimizer_v2\n"
        "    optimizer = create_optimizer_v2(student, 'adamw', lr=0.1)\n",
    ],
)
def test_the_model_the_optimizer_gets_through_a_helper_is_the_trained_one(setup):
    loop = loop_of(
        HEAD
        + setup
        + "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
    )
    assert loop.model_in_entry == "student"
    assert loop.teacher_in_entry == "teacher"


@pytest.mark.parametrize(
    "freeze",
    [
        "    for p in teacher.parameters():\n        p.requires_grad = False\n",
        "    for name, p in teacher.named_parameters():\n        p.requires_grad_(False)\n",
        "    teacher.requires_grad_(False)\n",
    ],
)
def test_a_model_whose_gradients_are_turned_off_is_the_teacher(freeze):
    # the optimizer comes from a config the tool cannot read: the frozen one is not trained
    text = (
        HEAD
        + freeze
        + (
            "    optimizer = build_optimizer(cfg)\n"
            "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
        )
    )
    loop = loop_of(text)
    assert loop.model_in_entry == "student" and loop.teacher_in_entry == "teacher"


def test_two_models_neither_frozen_nor_read_from_the_optimizer_stay_ambiguous():
    text = HEAD + (
        "    optimizer = build_optimizer(cfg)\n"
        "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
    )
    facts = analyze(parse_source(Path("s.py"), text))
    assert facts.loop is None
    assert "several models (student, teacher)" in facts.loop_error.message
    assert "neural-coder: model" in facts.loop_error.hint


def test_the_marker_the_ambiguity_hint_names_chooses_the_model():
    text = HEAD.replace("s = student(x)", "s = student(x)  # neural-coder: model") + (
        "    optimizer = build_optimizer(cfg)\n"
        "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
    )
    assert loop_of(text).model_in_entry == "student"


def test_a_partly_frozen_model_is_not_taken_for_a_frozen_one():
    freeze = (
        "    for name, p in teacher.named_parameters():\n"
        "        if 'fc' in name:\n            p.requires_grad = False\n"
    )
    text = (
        HEAD
        + freeze
        + (
            "    optimizer = build_optimizer(cfg)\n"
            "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
        )
    )
    assert analyze(parse_source(Path("s.py"), text)).loop is None


def test_loss_modules_are_neither_models_nor_counted_as_models():
    text = """import torch
import torch.nn as nn
from losses import Similarity


class DistillKL(nn.Module):
    def forward(self, s, t):
        return (s - t).abs().mean()


class Net(nn.Module):
    def forward(self, x):
        return x


model_s = Net()
criterion_kd = Similarity()
criterion_div = DistillKL()
dino_loss = Net()
optimizer = torch.optim.SGD(model_s.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        out = model_s(x)
        loss = criterion_div(out, y) + criterion_kd(out, y) + dino_loss(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
    facts = analyze(parse_source(Path("s.py"), text))
    assert [f.target for f in facts.found if f.kind == "model"] == ["model_s"]
    assert facts.loop is not None and facts.loop.model_in_entry == "model_s"


def copy_project(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(SAMPLES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def rewrite_project(folder: Path, entry: str, approach: str):
    options = build_options(approach, "runtime", {}, {})
    sources = discover_project(folder / entry, (folder / entry).read_text())
    return rewrite_sources(folder / entry, sources, options)


def refusal(folder: Path, entry: str, approach: str) -> str:
    """The refusal as the person reads it: `path:line: why` and the hint."""
    with pytest.raises(NeuralCoderError) as caught:
        rewrite_project(folder, entry, approach)
    return str(caught.value)


def test_the_connector_warm_up_loop_gets_no_hooks_and_the_student_is_compressed(tmp_path):
    folder = copy_project(tmp_path, "kd_zoo_project")
    rewritten, report = rewrite_project(folder, "train_student.py", "pruning")
    assert report.status is Status.TRANSFORMED, report.message
    assert folder / "helpers" / "pretrain.py" not in rewritten
    text = rewritten[folder / "train_student.py"]
    assert "prepare_compression(\n        model_s," in text
    assert any("auxiliary modules only" in w for w in report.warnings)


def test_a_model_taken_out_of_a_container_is_the_callers_model_it_was_added_as(tmp_path):
    """`model_s = module_list[0]` in train_distill(): main() appended model_s first and
    the teacher last, so the student is main()'s model_s and module_list[-1] teaches."""
    folder = copy_project(tmp_path, "kd_zoo_project")
    rewritten, report = rewrite_project(folder, "train_student.py", "distillation")
    assert report.status is Status.TRANSFORMED, report.message
    text = rewritten[folder / "train_student.py"]
    assert "prepare_compression(\n        model_s," in text and "teacher_model=model_t," in text
    assert "logit_s, loss, teacher_output=logit_t" in rewritten[folder / "helpers" / "loops.py"]


def explicit_student(folder: Path) -> None:
    """The way out the QAT refusal gives: the student handed down as an argument."""
    loops = folder / "helpers" / "loops.py"
    loops.write_text(
        loops.read_text()
        .replace("train_loader, module_list,", "train_loader, model_s, model_t, module_list,")
        .replace("    model_s = module_list[0]\n    model_t = module_list[-1]\n", "")
    )
    main = folder / "train_student.py"
    main.write_text(
        main.read_text().replace(
            "epoch, train_loader, module_list,",
            "epoch, train_loader, model_s, model_t, module_list,",
        )
    )


def test_qat_on_a_model_taken_out_of_a_container_is_refused_with_a_way_out_that_works(tmp_path):
    folder = copy_project(tmp_path, "kd_zoo_project")
    message = refusal(folder, "train_student.py", "qat")
    line = (folder / "helpers" / "loops.py").read_text().splitlines().index(
        "    for idx, (input, target) in enumerate(train_loader):"
    ) + 1
    assert f":{line} (helpers/loops.py):" in message
    assert "module_list[0], which is model_s where training starts" in message
    assert "hand model_s to the training function as an argument of its own" in message
    explicit_student(folder)
    rewritten, report = rewrite_project(folder, "train_student.py", "qat")
    assert report.status is Status.TRANSFORMED, report.message
    assert "model_s = compression_manager.model" in rewritten[folder / "train_student.py"]


def test_an_item_whose_place_in_the_container_is_not_certain_is_refused(tmp_path):
    folder = copy_project(tmp_path, "kd_zoo_project")
    main = folder / "train_student.py"
    main.write_text(
        main.read_text().replace(
            "    module_list.append(model_s)\n",
            "    if opt.init_epochs >= 0:\n        module_list.append(model_s)\n",
        )
    )
    line = (folder / "helpers" / "loops.py").read_text().splitlines().index(
        "    model_s = module_list[0]"
    ) + 1
    for approach in ("pruning", "distillation"):
        message = refusal(folder, "train_student.py", approach)
        assert f":{line} (helpers/loops.py):" in message
        assert "module_list[0]: an item of a container" in message
        assert "hand the model to train_distill() as an argument of its own" in message


@pytest.fixture
def ema_project(tmp_path: Path) -> Path:
    return copy_project(tmp_path, "ema_teacher_project")


def test_qat_before_a_weight_copy_into_the_teacher_is_refused_at_that_line(ema_project):
    message = refusal(ema_project, "main_selfsup.py", "qat")
    text = (ema_project / "main_selfsup.py").read_text().splitlines()
    line = next(
        i for i, t in enumerate(text, 1) if "load_state_dict(student.module.state_dict())" in t
    )
    assert f"main_selfsup.py:{line}:" in message
    assert "copies student.module's weights into teacher_without_ddp" in message


def test_a_teacher_fed_other_views_than_the_student_is_not_the_distillation_teacher(ema_project):
    message = refusal(ema_project, "main_selfsup.py", "distillation")
    assert "teacher at line" in message and "given views[:2], the student views" in message
    assert "--teacher" in message


def test_the_ema_teacher_is_reported_as_not_compressed(ema_project):
    _, report = rewrite_project(ema_project, "main_selfsup.py", "pruning")
    assert report.status is Status.TRANSFORMED
    assert any("moving average" in w and "not that copy" in w for w in report.warnings)


def test_post_training_on_a_model_only_saved_inside_the_loop_saves_it_beside_the_checkpoints(
    ema_project,
):
    """Nothing reads the student after the epoch loop: the fit follows it and writes the
    int8 student into the folder the script writes its checkpoints to."""
    rewritten, report = rewrite_project(ema_project, "main_selfsup.py", "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    text = rewritten[ema_project / "main_selfsup.py"]
    assert text.index('"checkpoint.pth"))') < text.index("quantization.fit(")
    assert (
        'quantized_model.save(os.path.join(args.output_dir, "neural_coder_ptq-dynamic"))' in text
    )


def test_the_single_file_form_refuses_nothing_it_should_not(tmp_path):
    """The sample's main script alone (its utils module not followed): still the student."""
    path = SAMPLES / "ema_teacher_project" / "main_selfsup.py"
    _, report = rewrite_source(
        Path("main_selfsup.py"), path.read_text(), build_options("pruning", "runtime", {}, {})
    )
    assert report.status is Status.TRANSFORMED, report.message


def test_the_refusal_is_a_neural_coder_error():
    with pytest.raises(NeuralCoderError, match="several models"):
        text = HEAD + (
            "    optimizer = build_optimizer(cfg)\n"
            "    for epoch in range(2):\n        train(student, teacher, optimizer, loader)\n"
        )
        rewrite_source(Path("s.py"), text, build_options("qat", "runtime", {}, {}))
