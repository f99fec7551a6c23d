"""Per-file outcomes, the exit code, and the JSON report."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


class Status(enum.Enum):
    TRANSFORMED = "Transformed"
    UNCHANGED = "Unchanged"
    SKIPPED = "Skipped"
    FAILED = "Failed"


@dataclass
class FileReport:
    path: Path
    status: Status
    message: str = ""
    found: list[str] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    output: Path | None = None
    backup: Path | None = None
    exit_code: int = 0
    diff: str = ""
    files: list[Path] = field(default_factory=list)  # a project: every file analysed
    files_written: list[Path] = field(default_factory=list)  # a project: every file rewritten
    traceback: str = ""  # an internal error's, shown with -v

    def render(self, verbose: bool = False, dry_run: bool = False) -> str:
        status = self.status.value
        if dry_run and self.status is Status.TRANSFORMED:
            status = "Would transform"  # --diff writes nothing, as black's "would reformat"
        lines = [
            f"{status}: {self.path}"
            + (f" -> {self.output}" if self.output and self.output != self.path else "")
        ]
        if self.message:
            lines += ["  " + line for line in self.message.splitlines()]
        if verbose or self.status is Status.TRANSFORMED:
            lines += [f"  + {p}" for p in self.placed]
        lines += [f"  warning: {w}" for w in self.warnings]
        if verbose and self.traceback:
            lines += ["  " + line for line in self.traceback.rstrip().splitlines()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["status"] = self.status.value
        data["output"] = str(self.output) if self.output else None
        data["backup"] = str(self.backup) if self.backup else None
        data["files"] = [str(p) for p in self.files]
        data["files_written"] = [str(p) for p in self.files_written]
        data.pop("diff")
        return data


def failed(path: Path, error: BaseException) -> FileReport:
    """The report of a file whose run raised: an expected failure renders its message; anything
    else is an internal error that names the file, with the traceback kept for -v."""
    from neural_coder.errors import NeuralCoderError

    if isinstance(error, NeuralCoderError):
        return FileReport(
            path=path, status=Status.FAILED, message=error.render(), exit_code=error.exit_code
        )
    import traceback

    return FileReport(
        path=path,
        status=Status.FAILED,
        message=f"{path}: internal error: {type(error).__name__}: {error}; nothing was written "
        "(run with -v for the traceback, and please report it)",
        exit_code=1,
        traceback="".join(traceback.format_exception(error)),
    )


def exit_code(reports: list[FileReport]) -> int:
    return max((r.exit_code for r in reports), default=0)


def write_json(reports: list[FileReport], path: Path) -> None:
    summary = {s.value: sum(r.status is s for r in reports) for s in Status}
    path.write_text(
        json.dumps({"files": [r.to_dict() for r in reports], "summary": summary}, indent=2) + "\n"
    )
