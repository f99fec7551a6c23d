"""The JupyterLab extension and the server extension are installed where Jupyter looks."""

from __future__ import annotations

import json
import re

import neural_coder
from tests.conftest import ROOT


def test_the_names_agree_between_the_extension_setup_py_and_the_package():
    package = json.loads((ROOT / "extensions/jupyterlab/package.json").read_text())
    name = package["name"]
    assert package["jupyterlab"]["outputDir"] == "../../coder/labextension"
    setup = (ROOT / "setup.py").read_text()
    assert re.search(rf'^NAME = "{name}"', setup, re.M)
    assert 'BUILT = Path("coder/labextension")' in setup
    assert neural_coder._jupyter_labextension_paths() == [{"src": "labextension", "dest": name}]


def test_the_server_extension_is_switched_on_by_its_config_file():
    switch = json.loads(
        (ROOT / "jupyter-config/jupyter_server_config.d/neural_coder.json").read_text()
    )
    assert switch == {"ServerApp": {"jpserver_extensions": {"neural_coder": True}}}
    (point,) = neural_coder._jupyter_server_extension_points()
    module = __import__(point["module"], fromlist=["_load_jupyter_server_extension"])
    assert callable(module._load_jupyter_server_extension)
