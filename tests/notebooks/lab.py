"""Start a Jupyter server (JupyterLab) on localhost for a test, and talk to it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TOKEN = "neural-coder-test-token"


@dataclass
class Lab:
    url: str
    root: Path
    log: Path

    def request(
        self, path: str, body: object | None = None, token: bool = True, timeout: float = 60
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {TOKEN}"
        request = urllib.request.Request(f"{self.url}/{path}", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}


def lab_app_dir() -> Path | None:
    """JupyterLab's own assets: in this Python's prefix, or in the one jupyterlab is
    installed in (a venv that reuses another's site-packages, as the dev worktrees do)."""
    import jupyterlab

    for prefix in (Path(sys.prefix), Path(jupyterlab.__file__).resolve().parents[3]):
        if (prefix / "share/jupyter/lab/static").is_dir():
            return prefix / "share/jupyter/lab"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_lab(root: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Lab]:
    port = free_port()
    state = root.parent / f"{root.name}-jupyter-state"
    state.mkdir(exist_ok=True)
    environment = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        **(env or {}),
    }
    app_dir = lab_app_dir()
    if app_dir is not None:
        environment["JUPYTERLAB_DIR"] = str(app_dir)
    # no "get notified about Jupyter news?" prompt over the page
    news = state / "settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}')
    log = state / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
             "--allow-root", *args],
            stdout=out, stderr=subprocess.STDOUT, env=environment,
        )  # fmt: skip
    lab = Lab(f"http://127.0.0.1:{port}", root, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if lab.request("api/status")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
