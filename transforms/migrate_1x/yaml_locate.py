"""Where a component's 1.x yaml is.

A relative path in `Quantization("./conf.yaml")` is relative to where the script
runs, which is usually its own folder or the folder the person runs it from: both
are looked in. A path that comes from the command line (`Quantization(args.config)`
with no argparse default) names the one yaml next to the script that has the
component's section, when exactly one has it.
"""

from __future__ import annotations

import re
from pathlib import Path

# component kind -> the top-level yaml sections that configure it
SECTIONS: dict[str, tuple[str, ...]] = {
    "quantization": ("quantization",),
    "pruning": ("pruning",),
    "distillation": ("distillation",),
    "mixed_precision": ("mixed_precision", "graph_optimization"),
    "benchmark": ("evaluation",),
}


def candidates(script: Path, text: str) -> list[Path]:
    """The files a yaml path can mean, in the order they are tried."""
    path = Path(text)
    if path.is_absolute():
        return [path]
    found = [script.parent / path, Path.cwd() / path]
    return [p for i, p in enumerate(found) if p.resolve() not in {q.resolve() for q in found[:i]}]


def resolve(script: Path, text: str) -> Path | None:
    """The first of `candidates` that exists, or None."""
    return next((p for p in candidates(script, text) if p.is_file()), None)


def only_yaml_for(script: Path, kind: str) -> Path | None:
    """The one *.yaml / *.yml next to `script` with a top-level section for `kind`."""
    sections = SECTIONS.get(kind)
    if not sections:
        return None
    heading = re.compile(rf"^({'|'.join(sections)})\s*:", re.M)
    fits = [
        p
        for p in sorted([*script.parent.glob("*.yaml"), *script.parent.glob("*.yml")])
        if p.is_file() and heading.search(p.read_text(encoding="utf-8", errors="replace"))
    ]
    return fits[0] if len(fits) == 1 else None
