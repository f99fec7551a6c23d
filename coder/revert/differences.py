"""What a refused `revert` says: the lines of the current file(s) that the closest
reproduction of `optimize`'s output does not have."""

from __future__ import annotations

import difflib

from neural_coder.errors import NeuralCoderError
from neural_coder.transforms.snippets import MARKER


class RevertRefused(NeuralCoderError):
    """The inserted code cannot be removed exactly; the file is left as it is."""


def similarity(current: str, again: str) -> float:
    return difflib.SequenceMatcher(
        a=current.splitlines(), b=again.splitlines(), autojunk=False
    ).ratio()


def marked_lines(text: str) -> list[tuple[int, str]]:
    return [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARKER)
    ]


def edited_lines(text: str, again: str) -> list[tuple[int, str]]:
    """Lines of `text` that `again` (a reproduction of the tool's output) does not have."""
    current = text.splitlines()
    lines: list[tuple[int, str]] = []
    matcher = difflib.SequenceMatcher(a=current, b=again.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines += [(n + 1, current[n]) for n in range(i1, i2)]
        elif tag == "insert" and i1 < len(current):
            lines.append((i1 + 1, current[i1]))
    return lines


def differences_message(listed: list[str], reproduced: bool) -> str:
    """The refusal's text: why, then the lines (`listed`, already rendered), 20 at most."""
    shown = "\n".join(listed[:20])
    more = f"\n  ... and {len(listed) - 20} more" if len(listed) > 20 else ""
    why = (
        "the code neural-coder inserted was edited since (or is not what this version inserts): "
        if reproduced
        else "the code carrying the neural-coder marker cannot be matched to any approach: "
    )
    return f"{why}these lines differ from what optimize writes\n{shown}{more}"
