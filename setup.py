"""Data files only (everything else is in pyproject.toml): the JupyterLab extension, built by
tools/build_labextension.sh into coder/labextension, goes where JupyterLab looks for prebuilt
extensions; the server extension's switch goes to jupyter_server_config.d. A wheel built
before the extension is built still builds, without it, and says so."""

import sys
from pathlib import Path

from setuptools import setup

NAME = "neural-coder-jupyterlab"  # extensions/jupyterlab/package.json
BUILT = Path("coder/labextension")

data_files = [
    (
        "etc/jupyter/jupyter_server_config.d",
        ["jupyter-config/jupyter_server_config.d/neural_coder.json"],
    )
]
if (BUILT / "package.json").is_file():
    data_files += [
        (f"share/jupyter/labextensions/{NAME}", [str(BUILT / "package.json")]),
        (
            f"share/jupyter/labextensions/{NAME}/static",
            sorted(str(p) for p in (BUILT / "static").iterdir()),
        ),
    ]
else:
    print(
        "neural-coder: the JupyterLab extension is not built (bash tools/build_labextension.sh); "
        "this build leaves it out",
        file=sys.stderr,
    )

setup(data_files=data_files)
