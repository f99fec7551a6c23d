"""Where a 1.x yaml is read from: a relative path names a file in the script's folder
or in the working directory (the script's folder first); a missing one names both."""

from __future__ import annotations

import pytest

from neural_coder.errors import ConfigError
from neural_coder.transforms.migrate_1x import migrate_source

SCRIPT = (
    "from neural_compressor.experimental import Quantization, common\n"
    "quantizer = Quantization('./conf/ptq.yaml')\n"
    "quantizer.model = common.Model(model)\n"
    "q_model = quantizer.fit()\n"
)


def _yaml(folder, approach):
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "ptq.yaml").write_text(f"quantization: {{approach: {approach}}}\n")


@pytest.fixture
def script(tmp_path):
    (tmp_path / "scripts").mkdir()
    path = tmp_path / "scripts" / "quant.py"
    path.write_text(SCRIPT)
    return path


def test_a_yaml_in_the_working_directory_is_read(script, tmp_path, monkeypatch):
    _yaml(tmp_path / "run", "post_training_dynamic_quant")
    monkeypatch.chdir(tmp_path / "run")
    result = migrate_source(SCRIPT, script, "runtime")
    assert result.migrated
    assert 'approach="dynamic"' in result.code and "Quantization(" not in result.code


def test_the_scripts_folder_comes_first(script, tmp_path, monkeypatch):
    _yaml(script.parent, "post_training_dynamic_quant")
    _yaml(tmp_path / "run", "post_training_static_quant")
    monkeypatch.chdir(tmp_path / "run")
    assert 'approach="dynamic"' in migrate_source(SCRIPT, script, "runtime").code


def test_a_yaml_in_neither_place_names_both(script, tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(ConfigError) as error:
        migrate_source(SCRIPT, script, "runtime")
    message = error.value.render()
    assert str(script.parent / "conf" / "ptq.yaml") in message
    assert str(tmp_path / "run" / "conf" / "ptq.yaml") in message
    assert "working directory" in message
