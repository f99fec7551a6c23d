"""Reading and writing user files: atomic writes, a backup, diffs."""

from __future__ import annotations

import contextlib
import difflib
import glob
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

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


def check_writable(path: Path, backup: bool) -> None:
    """Refuse before any work when `path` (and its .bak) cannot be written."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    blocked = None
    if not folder.is_dir():
        blocked = f"{folder} is not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        blocked = f"the folder {folder} is not writable"
    elif path.exists() and not os.access(path, os.W_OK):
        blocked = f"{path} is read-only"
    elif backup and path.with_name(path.name + ".bak").is_dir():
        blocked = f"{path.name}.bak is a folder, so the backup cannot be written"
    if blocked:
        raise NeuralCoderError(
            f"cannot write the result: {blocked}; nothing was changed",
            path=path,
            hint="write elsewhere with -o/--output, or look at the change with --diff",
        )


def write_atomic(path: Path, text: str, backup: bool = True) -> Path | None:
    """Replace `path` with `text` in one rename; keep the old file as `path.bak`.
    Any failure leaves `path` as it was and becomes a NeuralCoderError."""
    try:
        return _write_atomic(path, text, backup)
    except OSError as error:
        raise NeuralCoderError(
            f"cannot write the result: {error.strerror or error} ({error.filename or path}); "
            "the file was left as it was",
            path=path,
            hint="write elsewhere with -o/--output, or look at the change with --diff",
        ) from None


def _write_atomic(path: Path, text: str, backup: bool) -> Path | None:
    # Every file appears by one rename, so a run killed at any moment leaves the script
    # either as it was or completely rewritten, and the .bak either absent or complete.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_beside(path, lambda handle: handle.write(text.encode("utf-8")))
    try:
        backup_path = None
        if backup and path.exists():
            backup_path = path.with_name(path.name + ".bak")
            original = path.read_bytes()
            os.replace(_temporary_beside(backup_path, lambda h: h.write(original)), backup_path)
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return backup_path


def _temporary_beside(path: Path, fill: Callable[[BinaryIO], object]) -> Path:
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold `path` against other neural-coder runs for a read-rewrite-write. A second run on
    the same file fails at once instead of interleaving (and backing up the first run's output
    as if it were the original)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    try:
        handle = path.open("rb")
    except OSError:
        yield  # reading reports the problem
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NeuralCoderError(
                "another neural-coder run is rewriting this file; nothing was changed",
                path=path,
                hint="wait for it to finish, then run again",
            ) from None
        try:
            if os.fstat(handle.fileno()).st_ino != os.stat(path).st_ino:
                raise NeuralCoderError(
                    "the file was replaced while this run started (another run rewrote it); "
                    "nothing was changed",
                    path=path,
                    hint="run again: a second run on a rewritten file is a no-op",
                )
            # temporaries of a run that was killed before its rename (only a lock holder writes)
            for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def display_path(path: Path) -> str:
    """The path as diff headers show it: relative to the working folder where it can be,
    never with a doubled slash after a/ and b/."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path).lstrip("/")


def _lines(text: str) -> list[str]:
    """Lines as Python reads them: str.splitlines would also split at form feeds."""
    return io.StringIO(text, newline="").readlines()


def unified_diff(path: Path, before: str, after: str) -> str:
    shown = display_path(path)
    return "".join(
        difflib.unified_diff(
            _lines(before),
            _lines(after),
            f"a/{shown}",
            f"b/{shown}",
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
