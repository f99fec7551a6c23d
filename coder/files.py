"""Reading and writing user files: atomic writes, a backup, diffs."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from neural_coder.errors import NeuralCoderError


def read_text(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise NeuralCoderError("no such file", path=path) from None
    except UnicodeDecodeError as error:
        raise NeuralCoderError(
            f"not UTF-8 text ({error.reason} at byte {error.start})", path=path
        ) from None


def write_atomic(path: Path, text: str, backup: bool = True) -> Path | None:
    """Replace `path` with `text` in one rename; keep the old file as `path.bak`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup_path = None
    if backup and path.exists():
        backup_path = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup_path)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup_path


def unified_diff(path: Path, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )


def line_length_for(path: Path, default: int = 88) -> int:
    """The line length the project formats to: [tool.black] or [tool.ruff] in the nearest pyproject.toml."""
    import tomllib

    for folder in [path.resolve().parent, *path.resolve().parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (tomllib.TOMLDecodeError, OSError):
                return default
            tool = data.get("tool", {})
            for section in ("black", "ruff"):
                value = tool.get(section, {}).get("line-length")
                if isinstance(value, int):
                    return value
            return default
    return default
