"""Running scripts on Intel Neural Compressor 2.x, in its own virtual environment.

INC 2.6 needs numpy<2, so it cannot live in the project's .venv; it lives in an
environment made by ``tools/make_inc_env.sh`` whose python is named by the
environment variable ``NEURAL_CODER_INC_PYTHON`` (``tools/test.sh``, and so CI,
sets it). Reuse ``run_under_inc`` to execute any rewritten ``--target inc``
script there; ``inc_python`` / ``requires_inc`` to skip where it is not set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

INC_PYTHON_VARIABLE = "NEURAL_CODER_INC_PYTHON"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
ROOT = Path(__file__).resolve().parents[2]

_SKIP_REASON = (
    f"{INC_PYTHON_VARIABLE} is not set: these tests run scripts on Intel Neural Compressor 2.6 "
    f"in its own environment. Create it with `bash tools/make_inc_env.sh .venv-inc` and run "
    f"`{INC_PYTHON_VARIABLE}=$PWD/.venv-inc/bin/python pytest -m inc` (tools/test.sh does both)."
)


def inc_python() -> str | None:
    """The INC interpreter named by NEURAL_CODER_INC_PYTHON, or None when it is unset.

    Set but wrong (no such file) is an error, never a skip: CI sets it, so the
    INC tests must run there.
    """
    value = os.environ.get(INC_PYTHON_VARIABLE, "").strip()
    if not value:
        return None
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"{INC_PYTHON_VARIABLE}={value!r} is not an executable python")
    return str(path)


requires_inc = pytest.mark.skipif(
    not os.environ.get(INC_PYTHON_VARIABLE, "").strip(), reason=_SKIP_REASON
)


def _environment(env: Mapping[str, str | None] | None, target: str) -> dict[str, str]:
    merged = dict(os.environ)
    # Nothing from the project's .venv may leak into the other interpreter.
    for name in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"):
        merged.pop(name, None)
    merged.update(
        {
            "NEURAL_CODER_TARGET": target,
            "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONWARNINGS": "ignore",
        }
    )
    for key, value in (env or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def run_under_inc(
    script_path: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    env: Mapping[str, str | None] | None = None,
    args: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``python script_path *args`` with the INC interpreter, in ``cwd``.

    ``env`` adds variables to a copy of os.environ (a value of None removes one);
    VIRTUAL_ENV/PYTHONHOME/PYTHONPATH are dropped so that the project's .venv does
    not leak in, and NEURAL_CODER_TARGET=inc is set (the scripts of tests/inc/scripts
    read it). INC writes ``nc_workspace/`` into ``cwd`` for some flows: use a
    temporary directory. Output is captured as text; the return code is not checked.
    Raises RuntimeError when NEURAL_CODER_INC_PYTHON is unset (use ``requires_inc``).
    """
    python = inc_python()
    if python is None:
        raise RuntimeError(_SKIP_REASON)
    return subprocess.run(
        [python, str(script_path), *args],
        cwd=str(cwd),
        env=_environment(env, "inc"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_under_runtime(
    script_path: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    env: Mapping[str, str | None] | None = None,
    args: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """The same, with this interpreter (the project's .venv) and NEURAL_CODER_TARGET=runtime."""
    merged = _environment(env, "runtime")
    if "PYTHONPATH" in os.environ and not (env and "PYTHONPATH" in env):
        merged["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, str(script_path), *args],
        cwd=str(cwd),
        env=merged,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON object a script printed as its last JSON line on stdout."""
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line on stdout\n{describe(proc)}")


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """Command, return code and the tails of both streams, for assertion messages."""
    return (
        f"$ {' '.join(map(str, proc.args))}\nrc={proc.returncode}\n"
        f"--- stdout (tail)\n{proc.stdout[-2000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}"
    )
