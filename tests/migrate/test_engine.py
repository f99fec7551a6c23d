"""migrate_source as a whole: errors, targets, the rest of the file untouched, and the
acceptance scripts (both targets, second run a no-op, every TODO in the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neural_coder.transforms.errors import ConfigError, MigrationError, ParseError
from neural_coder.transforms.migrate_1x import migrate_source
from tests.conftest import SAMPLES, acceptance_scripts

# our own 1.x samples, and the shared acceptance ones when they are beside the checkout
# (legacy_todos.py keeps a 1.x component on purpose: tests/migrate/test_samples.py covers it)
SCRIPTS = [
    p for p in sorted((SAMPLES / "legacy").glob("*.py")) if p.name != "legacy_todos.py"
] + acceptance_scripts("legacy/*.py")

QUANT = """from neural_compressor.experimental import Quantization, common
quantizer = Quantization({path})
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader
q_model = quantizer.fit()
"""


def write(tmp_path: Path, code: str, **yamls: str) -> Path:
    for name, text in yamls.items():
        (tmp_path / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text(code)
    return script


def migrate(script: Path, target: str = "inc"):
    return migrate_source(script.read_text(), script, target)


def test_a_missing_yaml_is_an_error_naming_the_path(tmp_path):
    script = write(tmp_path, QUANT.format(path='"missing.yaml"'))
    with pytest.raises(ConfigError) as info:
        migrate(script)
    assert str(tmp_path / "missing.yaml") in str(info.value)


def test_a_component_built_from_what_the_tool_cannot_read_is_left_with_a_todo(tmp_path):
    script = write(tmp_path, QUANT.format(path="QuantConf(pick_config())"))
    result = migrate(script)
    assert [f.line for f in result.todos] == [2]
    assert "QuantConf(pick_config())" in result.todos[0].message
    assert result.code.splitlines()[2:] == script.read_text().splitlines()[1:]  # untouched


@pytest.mark.parametrize(
    "path",
    [
        'os.path.join(os.path.dirname(__file__), "c.yaml")',
        'os.path.join(os.path.dirname(os.path.abspath(__file__)), "c.yaml")',
        'Path(__file__).parent / "c.yaml"',
        'Path(__file__).resolve().parent / "c.yaml"',
    ],
)
def test_a_yaml_path_next_to_the_script(tmp_path, path):
    script = write(tmp_path, QUANT.format(path=path), **{"c.yaml": "tuning:\n  random_seed: 5\n"})
    assert "set_random_seed(5)" in migrate(script).code


def test_an_unsafe_yaml_is_refused(tmp_path):
    script = write(
        tmp_path,
        QUANT.format(path='"c.yaml"'),
        **{"c.yaml": "tuning:\n  random_seed: !!python/object/apply:os.getpid []\n"},
    )
    with pytest.raises(ConfigError) as info:
        migrate(script)
    assert info.value.path == tmp_path / "c.yaml" and info.value.line == 2


def test_a_yaml_with_an_unknown_key_is_refused(tmp_path):
    script = write(
        tmp_path,
        QUANT.format(path='"c.yaml"'),
        **{"c.yaml": "tuning:\n  exit_polic: {max_trials: 3}\n"},
    )
    with pytest.raises(ConfigError) as info:
        migrate(script)
    assert "tuning.exit_polic" in info.value.message and "exit_policy" in info.value.message


def test_the_yaml_path_may_be_a_name_or_an_argparse_default(tmp_path):
    yaml = {"c.yaml": "tuning:\n  random_seed: 3\n"}
    by_name = write(tmp_path, 'CONF = "c.yaml"\n' + QUANT.format(path="CONF"), **yaml)
    assert "set_random_seed(3)" in migrate(by_name).code
    by_arg = write(
        tmp_path,
        'import argparse\np = argparse.ArgumentParser()\np.add_argument("--tuned-conf", default="c.yaml")\n'
        "args = p.parse_args()\n" + QUANT.format(path="args.tuned_conf"),
        **yaml,
    )
    assert "set_random_seed(3)" in migrate(by_arg).code


def test_not_python_is_a_parse_error(tmp_path):
    script = write(tmp_path, "from neural_compressor.experimental import Quantization\nif x\n")
    with pytest.raises(ParseError):
        migrate(script)


def test_an_unknown_target_is_refused(tmp_path):
    script = write(tmp_path, "x = 1\n")
    with pytest.raises(MigrationError):
        migrate(script, "tensorflow")


def test_a_file_without_the_1x_api_is_unchanged(tmp_path):
    script = write(tmp_path, "import torch\n\nprint(torch.ones(1))\n")
    result = migrate(script)
    assert not result.changed and result.code == script.read_text() and result.findings == []


def test_the_rest_of_the_file_stays_byte_for_byte(tmp_path):
    odd = (
        "import torch   # the framework\n"
        "from neural_compressor.experimental import Quantization, common\n\n\n"
        "def  evaluate( m ) :   # odd spacing, kept\n"
        "    return  1.0\n\n"
        "x = [1,\n   2]  ;  y = {'a':1}\n"
    )
    tail = "\n\nprint( 'done' )   # end\n"
    script = write(
        tmp_path,
        odd + QUANT.format(path='"c.yaml"').split("\n", 1)[1] + tail,
        **{"c.yaml": "model: {name: m, framework: pytorch_fx}\n"},
    )
    code = migrate(script).code
    kept = odd.replace("from neural_compressor.experimental import Quantization, common\n", "")
    assert kept.split("\n", 1)[1] in code
    assert code.endswith(tail)
    assert code.startswith("import torch   # the framework\n")


def test_generated_names_avoid_the_names_the_file_uses(tmp_path):
    script = write(
        tmp_path,
        "quantization = 'user value'\nquantizer_conf = 1\n" + QUANT.format(path='"c.yaml"'),
        **{"c.yaml": "model: {name: m, framework: pytorch_fx}\n"},
    )
    code = migrate(script).code
    assert "from neural_compressor import quantization as nc_quantization" in code
    assert "quantizer_conf_2 = PostTrainingQuantConfig()" in code
    assert "nc_quantization.fit(model, quantizer_conf_2, calib_dataloader=loader)" in code


def test_runtime_target_redirects_the_2x_utilities_the_script_already_uses(tmp_path):
    script = write(
        tmp_path,
        "from neural_compressor.utils.pytorch import load\n"
        + QUANT.format(path='"c.yaml"')
        + "int8 = load('./out', model)\n",
        **{"c.yaml": "model: {name: m, framework: pytorch_fx}\n"},
    )
    code = migrate(script, "runtime").code
    imports = [
        line for line in code.splitlines() if line.startswith("from neural_coder.runtime import")
    ]
    assert len(imports) == 1 and "load" in imports[0].split(" import ")[1].split(", ")
    assert "neural_compressor" not in code


@pytest.mark.parametrize("target", ["inc", "runtime"])
@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_the_1x_scripts_migrate(path, target):
    name = path.name
    result = migrate_source(path.read_text(), path, target)
    assert result.changed
    imported = set(re.findall(r"^\s*(?:from|import) ([\w.]+)", result.code, re.M))
    assert not any(m.startswith("neural_compressor.experimental") for m in imported)
    other = "neural_compressor" if target == "runtime" else "neural_coder"
    assert not any(m.split(".")[0] == other for m in imported), imported
    compile(result.code, name, "exec")
    lines = result.code.splitlines()
    for finding in result.todos:
        assert lines[finding.line - 1].strip() == f"# TODO(neural-coder): {finding.message}"
    again = migrate_source(result.code, path, target)
    assert again.code == result.code and not again.changed
