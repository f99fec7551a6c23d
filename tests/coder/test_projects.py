"""Projects of several files: the script's local imports are followed, each part is
edited where it lives, a second run changes nothing, and nothing is written unless
every file succeeds.

Golden files: tests/golden/projects/<project>.<approach>.<target>/<file>, regenerated
with NEURAL_CODER_UPDATE_GOLDEN=1 like tests/coder/test_golden.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from neural_coder.analysis.project import default_root, discover_project
from neural_coder.api import Output, Project, optimize_file, rewrite_sources
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import ROOT, SAMPLES, run_cli

GOLDEN = ROOT / "tests" / "golden" / "projects"
CASES = [
    ("engine_project", "main.py", "pruning+qat", "runtime"),
    ("engine_project", "main.py", "distillation", "runtime"),
    ("engine_project", "main.py", "ptq-dynamic", "runtime"),
    ("trainer_class_project", "main.py", "pruning+qat", "runtime"),
    ("package_layout", "train.py", "distillation+pruning+qat", "inc"),
    ("qa_trainer_project", "run_qa.py", "pruning+qat", "runtime"),
    ("qa_trainer_project", "run_qa.py", "ptq-dynamic", "runtime"),
    # the student, which the optimizer gets through get_param_groups(student); the EMA
    # teacher (requires_grad off) is not a second model
    ("ema_teacher_project", "main_selfsup.py", "pruning", "runtime"),
    # loss modules are not models; the connector warm-up loop gets no hooks; the loop's
    # module_list[0] is main()'s model_s; the script's own frozen teacher (module_list[-1])
    # teaches, on the logits of `feat_s, logit_s = model_s(...)`
    ("kd_zoo_project", "train_student.py", "pruning", "runtime"),
    ("kd_zoo_project", "train_student.py", "distillation", "runtime"),
    # scripts in tools/ importing the project's package from the folder above
    ("scripts_layout", "tools/train.py", "pruning", "runtime"),
    ("scripts_layout", "tools/evaluate.py", "ptq-dynamic", "runtime"),
]
# projects whose script already runs a trained teacher: distillation uses it, not a copy
SCRIPT_TEACHER_PROJECTS = frozenset({"kd_zoo_project"})


def copy_project(tmp_path: Path, project: str) -> Path:
    target = tmp_path / project
    shutil.copytree(SAMPLES / project, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(("project", "entry", "approach", "target"), CASES)
def test_each_file_matches_reviewed_output_and_a_second_run_is_a_no_op(
    tmp_path, project, entry, approach, target
):
    folder = copy_project(tmp_path, project)
    # the samples' models are built at random: distillation is asked to copy them explicitly
    teacher = (
        "copy" if "distillation" in approach and project not in SCRIPT_TEACHER_PROJECTS else None
    )
    options = build_options(approach, target, {}, {"distillation": {"teacher": teacher}})
    sources = discover_project(folder / entry, (folder / entry).read_text())
    rewritten, report = rewrite_sources(folder / entry, sources, options)
    assert report.status is Status.TRANSFORMED, report.message
    changed = {str(p.relative_to(folder)): text for p, text in rewritten.items()}
    expected_folder = GOLDEN / f"{project}.{approach.replace('+', '_')}.{target}"
    if os.environ.get("NEURAL_CODER_UPDATE_GOLDEN"):
        shutil.rmtree(expected_folder, ignore_errors=True)
        for name, text in changed.items():
            (expected_folder / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_folder / name).write_text(text)
    assert changed == files_of(expected_folder)

    again_sources = {p: rewritten.get(p, text) for p, text in sources.items()}
    again, second = rewrite_sources(folder / entry, again_sources, options)
    assert second.status is Status.UNCHANGED and again == {}, second.message


def test_the_report_places_hooks_in_the_file_where_the_loop_lives(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    result = run_cli("optimize", folder / "main.py", "--approach", "pruning")
    assert result.exit_code == 0, result.output
    assert "pruning hooks inserted (target: runtime) in main.py, engine.py" in result.output
    assert "on_before_optimizer_step: before the statement at line 26 (engine.py)" in result.output
    assert (
        "warning: engine.py:10: train_one_epoch() now takes compression_manager; "
        "other scripts that call it must pass one" in result.output
    )
    assert (folder / "engine.py.bak").is_file() and (folder / "main.py.bak").is_file()
    again = run_cli("optimize", folder / "main.py", "--approach", "pruning")
    assert again.exit_code == 0 and "Unchanged" in again.output


def test_diff_shows_every_file_and_writes_nothing(tmp_path):
    folder = copy_project(tmp_path, "package_layout")
    before = files_of(folder)
    result = run_cli("optimize", folder / "train.py", "--approach", "qat", "--diff")
    assert result.exit_code == 0, result.output
    assert "+++ b/" in result.output and "train.py" in result.output
    assert "utils/train_utils.py" in result.output
    assert files_of(folder) == before


def test_single_file_does_not_follow_imports(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    result = run_cli("optimize", folder / "main.py", "--approach", "qat", "--single-file")
    assert result.exit_code == 1
    assert "no training loop: nothing calls .backward()" in result.output


def test_modules_below_the_project_folder(tmp_path):
    """tools/train.py imports `engine`, which lives at the project's root: found by
    walking up from the script, or from --project; --single-file follows nothing."""
    folder = copy_project(tmp_path, "engine_project")
    (folder / "tools").mkdir()
    (folder / "main.py").rename(folder / "tools" / "main.py")
    script = folder / "tools" / "main.py"
    alone = run_cli("optimize", script, "--approach", "qat", "--single-file", "--diff")
    assert alone.exit_code == 1, alone.output
    found = run_cli("optimize", script, "--approach", "qat", "--diff")
    assert found.exit_code == 0, found.output
    assert f"project folder {folder.resolve()}: followed engine.py" in found.output
    with_root = run_cli("optimize", script, "--approach", "qat", "--project", folder, "--diff")
    assert with_root.exit_code == 0, with_root.output
    assert "engine.py" in with_root.output and "Would transform" in with_root.output


def test_an_error_in_another_file_names_that_file(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    main = folder / "main.py"
    text = main.read_text()
    main.write_text(
        text.replace(
            "        stats = evaluate(data_loader_val, model, device)\n",
            "        stats = evaluate(data_loader_val, model, device)\n"
            "        train_one_epoch(model, criterion, data_loader_val, optimizer, device, epoch)\n",
        )
    )
    before = files_of(folder)
    report = optimize_file(main, build_options("qat", None, {}, {}))
    assert report.status is Status.FAILED and report.exit_code == 1
    assert f"{folder / 'engine.py'}:10: train_one_epoch() holds the training step" in report.message
    assert files_of(folder) == before


def test_nothing_is_written_when_one_file_fails_verification(tmp_path, monkeypatch):
    import neural_coder.api as api
    from neural_coder.verify import VerificationError

    real = api.verify_rewrite

    def failing(path, original, code):
        if path.name == "engine.py":
            raise VerificationError("internal error: planted failure", path=path)
        return real(path, original, code)

    monkeypatch.setattr(api, "verify_rewrite", failing)
    folder = copy_project(tmp_path, "engine_project")
    before = files_of(folder)
    report = optimize_file(folder / "main.py", build_options("pruning", None, {}, {}))
    assert report.status is Status.FAILED and "planted failure" in report.message
    assert files_of(folder) == before  # main.py untouched, no .bak, no temporary file


def test_nothing_is_written_when_one_file_cannot_be_written(tmp_path, monkeypatch):
    import neural_coder.projects as projects

    real = projects.os.fdopen
    opened: list[int] = []

    def failing(descriptor, *args, **kwargs):
        opened.append(descriptor)
        if len(opened) == 2:
            os.close(descriptor)
            raise OSError(28, "No space left on device")
        return real(descriptor, *args, **kwargs)

    monkeypatch.setattr(projects.os, "fdopen", failing)
    folder = copy_project(tmp_path, "engine_project")
    before = files_of(folder)
    report = optimize_file(folder / "main.py", build_options("pruning", None, {}, {}))
    assert report.status is Status.FAILED and "No space left on device" in report.message
    assert len(opened) == 2
    assert files_of(folder) == before


def test_output_path_refuses_a_rewrite_of_several_files(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    report = optimize_file(
        folder / "main.py",
        build_options("pruning", None, {}, {}),
        Output(path=tmp_path / "out.py"),
        Project(),
    )
    assert report.status is Status.FAILED and "changes 2 files" in report.message
    assert not (tmp_path / "out.py").exists()


GUESSED = """\
from optimum.onnxruntime import ORTTrainer, ORTTrainingArguments
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
args = ORTTrainingArguments(output_dir="out", num_train_epochs=1)
trainer = ORTTrainer(model=model, args=args, train_dataset=None)
trainer.train()
"""

NOT_A_TRAINER = """\
from lightweight_lib import Trainer

model = build()
trainer = Trainer(config, model, dataset)
trainer.run()
"""


def test_a_trainer_of_an_unknown_library_is_recognised_by_use_with_a_warning():
    from neural_coder.api import rewrite_source

    rewritten, report = rewrite_source(
        Path("ort.py"), GUESSED, build_options("pruning", None, {}, {})
    )
    assert report.status is Status.TRANSFORMED
    assert "callbacks=[CompressionCallback(compression_manager" in rewritten
    assert any(
        "ORTTrainer (from optimum.onnxruntime)" in w and "a guess" in w for w in report.warnings
    )


def test_a_class_named_trainer_that_is_not_built_like_one_is_not_guessed():
    from neural_coder.analysis import analyze, parse_source

    facts = analyze(parse_source(Path("lib.py"), NOT_A_TRAINER))
    assert facts.trainers == []


def test_a_trainer_subclass_in_a_sibling_module_is_resolved_not_guessed(tmp_path):
    folder = copy_project(tmp_path, "qa_trainer_project")
    entry = folder / "run_qa.py"
    options = build_options("pruning", None, {}, {})
    _, followed = rewrite_sources(entry, discover_project(entry, entry.read_text()), options)
    assert followed.status is Status.TRANSFORMED and followed.warnings == []
    alone = optimize_file(entry, options, Output(dry_run=True), Project(follow_imports=False))
    assert alone.status is Status.TRANSFORMED
    assert any("QuestionAnsweringTrainer (from trainer_qa)" in w for w in alone.warnings)


def test_imports_resolve_through_aliases_and_package_re_exports(tmp_path):
    """`import helpers.loop as loop_lib; loop_lib.fit(...)` and a function re-exported by
    a package's __init__ (`from .evaluation import accuracy`) resolve to their files."""
    import libcst as cst

    from neural_coder.analysis import analyze
    from neural_coder.analysis.project import parse_project

    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("from .evaluation import accuracy\n")
    (tmp_path / "helpers" / "evaluation.py").write_text(
        "def accuracy(model, loader):\n    return sum(float(model(x).sum()) for x in loader)\n"
    )
    (tmp_path / "helpers" / "loop.py").write_text(
        "def fit(model, loader, optimizer, epochs):\n"
        "    for epoch in range(epochs):\n"
        "        for x in loader:\n"
        "            loss = model(x).sum()\n"
        "            loss.backward()\n"
        "            optimizer.step()\n"
    )
    main = tmp_path / "main.py"
    main.write_text(
        "import torch\n"
        "import helpers.loop as loop_lib\n"
        "from helpers import accuracy\n\n"
        "model = torch.nn.Linear(4, 1)\n"
        "loader = [torch.randn(2, 4)]\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loop_lib.fit(model, loader, optimizer, 2)\n"
        "print(accuracy(model, loader))\n"
    )
    sources = discover_project(main, main.read_text())
    assert {p.name for p in sources} == {"main.py", "loop.py", "__init__.py", "evaluation.py"}
    facts = analyze(parse_project(main, sources))
    assert facts.loop is not None and facts.loop.model_in_entry == "model"
    assert facts.loop.step_scope.name.value == "fit"
    index = facts.index
    call = next(c for c in index.calls if index.source.code(c.func) == "accuracy")
    fn = index.resolve_call(call)
    assert fn is not None and isinstance(fn.node, cst.FunctionDef)
    assert index.source.part_of(fn.node).path.name == "evaluation.py"


def test_a_package_script_importing_a_sibling_module_with_from_dot(tmp_path):
    """`from . import loops` in pkg/train.py, run as `python -m pkg.train`."""
    from neural_coder.analysis import analyze
    from neural_coder.analysis.project import parse_project

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "loops.py").write_text(
        "def train(model, loader, optimizer):\n"
        "    for x in loader:\n"
        "        loss = model(x).sum()\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
    )
    entry = package / "train.py"
    entry.write_text(
        "import torch\n"
        "from . import loops\n\n"
        "model = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(2):\n"
        "    loops.train(model, [torch.randn(2, 4)], optimizer)\n"
    )
    sources = discover_project(entry, entry.read_text(), root=tmp_path)
    assert {p.name for p in sources} == {"train.py", "loops.py"}
    facts = analyze(parse_project(entry, sources, root=tmp_path))
    assert facts.loop is not None and facts.loop.step_scope.name.value == "train"
    assert facts.loop.epoch_loop is not None


def test_a_module_that_does_not_parse_is_left_out(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    (folder / "legacy.py").write_text("print 'python 2'\n")
    main = folder / "main.py"
    main.write_text("import legacy\n" + main.read_text())
    sources = discover_project(main, main.read_text())
    assert {p.name for p in sources} == {"main.py", "engine.py"}


def test_a_module_handed_in_that_does_not_parse_is_left_out_of_the_project(tmp_path):
    from neural_coder.analysis.project import parse_project

    folder = copy_project(tmp_path, "engine_project")
    main = folder / "main.py"
    sources = discover_project(main, main.read_text())
    sources[folder / "legacy.py"] = "print 'python 2'\n"
    project = parse_project(main, sources)
    assert {part.path.name for part in project.parts} == {"main.py", "engine.py"}


def test_json_report_lists_the_files_of_the_project(tmp_path):
    import json

    folder = copy_project(tmp_path, "package_layout")
    out = tmp_path / "report.json"
    result = run_cli("optimize", folder / "train.py", "-a", "pruning", "--report", out)
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(out.read_text())["files"]
    assert entry["status"] == "Transformed"
    written = {Path(p).relative_to(folder).as_posix() for p in entry["files_written"]}
    assert written == {"train.py", "utils/train_utils.py"}
    analysed = {Path(p).relative_to(folder).as_posix() for p in entry["files"]}
    assert analysed >= {"train.py", "utils/train_utils.py", "utils/data.py", "utils/meters.py"}


def test_a_subclass_of_an_unknown_library_trainer_is_guessed_too():
    from neural_coder.analysis import analyze, parse_source

    script = GUESSED.replace(
        "trainer = ORTTrainer(",
        "class DistilTrainer(ORTTrainer):\n    pass\n\n\ntrainer = DistilTrainer(",
    )
    (use,) = analyze(parse_source(Path("sub.py"), script)).trainers
    assert use.class_name == "DistilTrainer"
    assert use.guessed is not None and "DistilTrainer (a subclass of ORTTrainer)" in use.guessed


def test_inspect_shows_the_loop_in_the_module_where_it_lives(tmp_path):
    folder = copy_project(tmp_path, "engine_project")
    result = run_cli("inspect", folder / "main.py")
    assert result.exit_code == 0, result.output
    assert "backward    line 23 (engine.py)  loss.backward()" in result.output


def test_a_model_class_imported_from_another_file_is_a_model(tmp_path):
    """`from models import TinyConvNet as Net`: post-training quantization finds the model."""
    folder = copy_project(tmp_path, "engine_project")
    main = folder / "main.py"
    text = main.read_text()
    start, end = text.index("class TinyConvNet"), text.index("def build_loaders")
    (folder / "models.py").write_text("import torch.nn as nn\n\n\n" + text[start:end])
    main.write_text(
        text[:start].replace(
            "from engine import", "from models import TinyConvNet as Net\nfrom engine import"
        )
        + text[end:].replace("model = TinyConvNet()", "model = Net()")
    )
    report = optimize_file(main, build_options("ptq-dynamic", None, {}, {}), Output(dry_run=True))
    assert report.status is Status.TRANSFORMED, report.message
    assert "model       line   36  TinyConvNet()  -> model" in report.found, report.found
    assert "quantization.fit(" in report.diff


def _package(folder: Path, name: str = "pkg") -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "engine.py").write_text("def train(model):\n    return model\n")


SCRIPT = "from pkg.engine import train\n"


def test_default_root_walks_up_to_the_folder_holding_the_imported_package(tmp_path):
    _package(tmp_path / "repo")
    (tmp_path / "repo" / "setup.cfg").write_text("")
    script = tmp_path / "repo" / "projects" / "demo" / "run.py"
    script.parent.mkdir(parents=True)
    script.write_text(SCRIPT)
    assert default_root(script, SCRIPT) == (tmp_path / "repo").resolve()
    found = discover_project(script, SCRIPT)
    assert sorted(p.name for p in found) == ["engine.py", "run.py"]


def test_default_root_stops_at_a_repository_marker_and_at_the_working_folder(
    tmp_path, monkeypatch
):
    _package(tmp_path)  # above the repository: another project's package, not this one's
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    script = tmp_path / "repo" / "tools" / "run.py"
    script.parent.mkdir(parents=True)
    script.write_text(SCRIPT)
    assert default_root(script, SCRIPT) is None
    assert list(discover_project(script, SCRIPT)) == [script]
    # a working folder above the script bounds the walk too
    _package(tmp_path / "work")
    inner = tmp_path / "work" / "sub" / "tools" / "run.py"
    inner.parent.mkdir(parents=True)
    inner.write_text(SCRIPT)
    monkeypatch.chdir(tmp_path / "work" / "sub")
    assert default_root(inner, SCRIPT) is None
    monkeypatch.chdir(inner.parent)  # run from the script's own folder: the walk goes on
    assert default_root(inner, SCRIPT) == (tmp_path / "work").resolve()
