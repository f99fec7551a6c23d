"""The JupyterLab extension and the server extension are installed where Jupyter looks."""

from __future__ import annotations

import json

import tomllib

import neural_coder
from tests.conftest import ROOT


def test_data_files_install_the_labextension_and_switch_on_the_server_extension():
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    package = json.loads((ROOT / "extensions/jupyterlab/package.json").read_text())
    name = package["name"]
    assert package["jupyterlab"]["outputDir"] == "../../coder/labextension"
    assert data_files[f"share/jupyter/labextensions/{name}"] == ["coder/labextension/package.json"]
    assert data_files[f"share/jupyter/labextensions/{name}/static"] == [
        "coder/labextension/static/*"
    ]
    assert neural_coder._jupyter_labextension_paths() == [{"src": "labextension", "dest": name}]

    (config,) = data_files["etc/jupyter/jupyter_server_config.d"]
    switch = json.loads((ROOT / config).read_text())
    assert switch == {"ServerApp": {"jpserver_extensions": {"neural_coder": True}}}
    (point,) = neural_coder._jupyter_server_extension_points()
    module = __import__(point["module"], fromlist=["_load_jupyter_server_extension"])
    assert callable(module._load_jupyter_server_extension)
