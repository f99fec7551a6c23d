"""--target runtime: every import the migration writes resolves in neural_coder.runtime,
and the 2.x utilities it redirects there (`load`, `save_for_huggingface_upstream`,
`OptimizedModel`) take the arguments INC 2.x's do."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect

import pytest

from neural_coder.transforms.migrate_1x import migrate_source
from neural_coder.transforms.migrate_1x.targets import RUNTIME_REDIRECTS
from tests.conftest import SAMPLES

from .conftest import CASES

# The leading parameters of INC 2.x's functions (neural_compressor 2.6:
# utils/pytorch.py `load`, utils/load_huggingface.py), which migrated calls pass positionally.
INC_PARAMETERS = {
    "load": ["checkpoint_dir", "model"],
    "save_for_huggingface_upstream": ["model", "tokenizer", "output_dir"],
    "OptimizedModel": ["model_name_or_path"],  # OptimizedModel.from_pretrained
}


@pytest.mark.parametrize(
    ("module", "name"), sorted(set(RUNTIME_REDIRECTS.values())), ids=lambda x: x
)
def test_a_redirect_resolves_and_takes_inc_arguments(module, name):
    found = getattr(importlib.import_module(module), name)
    function = found.from_pretrained if inspect.isclass(found) else found
    params = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    expected = INC_PARAMETERS[name]
    assert params[: len(expected)] == expected


def _scripts():
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        yield folder / "before.py"
    yield from sorted((SAMPLES / "legacy").glob("*.py"))


@pytest.mark.parametrize("script", list(_scripts()), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_runtime_import_the_migration_writes_resolves(script):
    code = migrate_source(script.read_text(), script, "runtime").code
    imports = [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neural_coder")
        for alias in node.names
    ]
    for module, name in imports:
        found = importlib.import_module(module)
        assert hasattr(found, name) or importlib.util.find_spec(f"{module}.{name}"), (
            f"{script}: from {module} import {name}"
        )


def test_the_hugging_face_helpers_are_redirected_to_the_runtime():
    folder = CASES / "hf_save_upstream"
    code = migrate_source((folder / "before.py").read_text(), folder / "before.py", "runtime").code
    assert (
        "from neural_coder.runtime.integrations.transformers import "
        "OptimizedModel, save_for_huggingface_upstream" in code
    )
    assert "neural_compressor" not in code


def test_a_2x_import_without_a_runtime_counterpart_stays_with_a_todo(tmp_path):
    (tmp_path / "c.yaml").write_text("model: {name: m, framework: pytorch_fx}\n")
    script = tmp_path / "script.py"
    script.write_text(
        "from neural_compressor.experimental import Quantization, common\n"
        "from neural_compressor.utils.load_huggingface import export_compressed_model\n"
        "quantizer = Quantization('c.yaml')\n"
        "quantizer.model = common.Model(model)\n"
        "quantizer.calib_dataloader = loader\n"
        "q_model = quantizer.fit()\n"
        "export_compressed_model(q_model)\n"
    )
    result = migrate_source(script.read_text(), script, "runtime")
    lines = result.code.splitlines()
    todo = next(i for i, line in enumerate(lines) if "export_compressed_model` has no" in line)
    assert lines[todo].startswith("# TODO(neural-coder): ")
    assert lines[todo + 1] == (
        "from neural_compressor.utils.load_huggingface import export_compressed_model"
    )
    assert "from neural_coder.runtime import quantization" in result.code
