"""Helpers for the 1.x -> 2.x migration tests."""

from __future__ import annotations

from pathlib import Path

CASES = Path(__file__).parent / "cases"


def render_findings(findings, folder: Path) -> str:
    """Findings as text, with the file named relative to its case folder."""
    lines = []
    for f in findings:
        name = Path(f.file).relative_to(folder) if Path(f.file).is_absolute() else Path(f.file)
        lines.append(f"{name}:{f.line}: {f.kind}: {f.message}")
    return "\n".join(lines) + ("\n" if lines else "")
