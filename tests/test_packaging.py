"""The namespace mapping and the import boundaries of DESIGN.md."""

from __future__ import annotations

import subprocess
import sys

import tomllib

from tests.conftest import ROOT

FOLDERS = {
    "coder": "neural_coder",
    "transforms": "neural_coder.transforms",
    "runtime": "neural_coder.runtime",
}


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            name = ".".join((package, *relative))
            if not name.startswith("neural_coder.transforms") or folder == "transforms":
                found.add(name)
    assert found == listed


def test_the_runtime_imports_without_libcst_black_or_click():
    code = (
        "import sys\n"
        "for blocked in ('libcst', 'black', 'click', 'yaml'):\n"
        "    sys.modules[blocked] = None\n"
        "import neural_coder.runtime.training, neural_coder.runtime.config\n"
        "import neural_coder.runtime.quantization, neural_coder.runtime.mix_precision, neural_coder.runtime.benchmark\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_transforms_import_nothing_of_the_coder():
    for path in (ROOT / "transforms").rglob("*.py"):
        text = path.read_text()
        assert (
            "from neural_coder import" not in text and "import neural_coder.analysis" not in text
        ), path
        for line in text.splitlines():
            if line.startswith(("from neural_coder", "import neural_coder")):
                assert line.startswith(
                    ("from neural_coder.transforms", "import neural_coder.transforms")
                ), (path, line)


def test_the_runtime_imports_neither_coder_nor_transforms():
    for path in (ROOT / "runtime").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("from neural_coder", "import neural_coder")):
                assert stripped.startswith(
                    ("from neural_coder.runtime", "import neural_coder.runtime")
                ), (path, line)
