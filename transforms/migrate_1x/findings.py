"""What a migration reports: the result of one file and its findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["TODO", "INFO"]

TODO_PREFIX = "# TODO(neural-coder): "


@dataclass(frozen=True)
class Finding:
    """One entry of the migration report.

    `line` is the line in the migrated code (where a TODO comment sits, or the
    first line of the rewritten statement); `source_line` is the line of the 1.x
    code the finding is about. A TODO finding is also written into the migrated
    code as a `# TODO(neural-coder): ...` comment at `line`; INFO findings are
    report-only.
    """

    file: str
    line: int
    kind: Kind
    message: str
    source_line: int | None = None

    def render(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


@dataclass
class MigrationResult:
    """The migrated code of one file, whether it changed, and what was reported."""

    code: str
    changed: bool
    findings: list[Finding] = field(default_factory=list)
    # False when the only change is TODO comments: every 1.x component was left as it was
    migrated: bool = True

    @property
    def todos(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "TODO"]
