"""The libcst transformers that carry out a migration plan: statement and expression
edits, 1.x imports redirected to 2.x, and the findings placed at their anchors."""

from __future__ import annotations

import re
from collections.abc import Sequence

import libcst as cst

from .codegen import code_of
from .context import ANCHOR, Ctx
from .findings import Finding
from .targets import RUNTIME_REDIRECTS

# --------------------------------------------------------------------------------------


class _Apply(cst.CSTTransformer):
    """Applies the statement edits (around statements of a block) and the expression edits."""

    def __init__(self, ctx: Ctx) -> None:
        super().__init__()
        self.ctx = ctx

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        result = super().on_leave(original_node, updated_node)
        fn = self.ctx.expr_edits.get(original_node)
        if fn is not None and isinstance(result, cst.CSTNode):
            result = fn(result)
        return result  # type: ignore[return-value]

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, footer = self._splice(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body, footer=[*footer, *updated_node.footer])

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body, footer = self._splice(original_node.body, updated_node.body)
        if body and original_node.body and body[0] is not updated_node.body[0]:
            # a block does not start with blank lines (when its first statement went)
            lines = list(body[0].leading_lines)
            while lines and lines[0].comment is None:
                lines.pop(0)
            body[0] = body[0].with_changes(leading_lines=lines)
        if not body:
            body = [cst.SimpleStatementLine([cst.Pass()], leading_lines=footer)]
            footer = []
        return updated_node.with_changes(body=body, footer=[*footer, *updated_node.footer])

    def _splice(
        self, original: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement]
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        out: list[cst.BaseStatement] = []
        carry: list[cst.EmptyLine] = []  # comments of removed statements go to the next one
        for orig, upd in zip(original, updated, strict=True):
            edit = self.ctx.stmt_edits.get(orig)
            if carry and upd.leading_lines and upd.leading_lines[0].comment is None:
                # the next statement brings its own blank lines: keep only carried comments
                carry = [line for line in carry if line.comment is not None]
            if edit is None:
                out.append(
                    upd.with_changes(leading_lines=[*carry, *upd.leading_lines]) if carry else upd
                )
                carry = []
                continue
            lead = [*carry, *upd.leading_lines]
            if edit.replace is None:
                stmt = upd.with_changes(leading_lines=list(edit.notes))
                slot = [*edit.before, stmt, *edit.after]
                # the user's comments stay on top of what is inserted before their statement
                slot[0] = slot[0].with_changes(
                    leading_lines=_join_leading(lead, slot[0].leading_lines)
                )
            else:
                kept = list(edit.replace)
                if (
                    kept
                    and isinstance(kept[0], cst.SimpleStatementLine)
                    and isinstance(upd, cst.SimpleStatementLine)
                ):
                    if (
                        upd.trailing_whitespace.comment is not None
                        and kept[0].trailing_whitespace.comment is None
                    ):
                        kept[0] = kept[0].with_changes(trailing_whitespace=upd.trailing_whitespace)
                slot = [*edit.before, *kept, *edit.after]
                if not slot:
                    carry = [*lead, *edit.notes]
                    continue
                slot[0] = slot[0].with_changes(
                    leading_lines=_join_leading([*lead, *edit.notes], slot[0].leading_lines)
                )
            carry = []
            out.extend(slot)
        return out, carry


def _join_leading(
    lead: Sequence[cst.EmptyLine], own: Sequence[cst.EmptyLine]
) -> list[cst.EmptyLine]:
    """The lines above a statement (the user's, carried ones, notes) on top of a generated
    statement's own spacing (the blank lines around a generated `def`): blank lines do
    not stack beyond that spacing (finding anchors, removed later, do not count)."""
    limit = next((i for i, line in enumerate(own) if line.comment is not None), len(own))
    if limit == 0:
        return [*lead, *own]
    out: list[cst.EmptyLine] = []
    run = 0
    for line in [*lead, *own]:
        if line.comment is None:
            run += 1
            if run > limit:
                continue
        elif not line.comment.value.startswith(ANCHOR):
            run = 0
        out.append(line)
    return out


class _Redirect(cst.CSTTransformer):
    """--target runtime: imports of 2.x utilities the runtime provides point at it."""

    def __init__(self, ctx: Ctx) -> None:
        super().__init__()
        self.ctx = ctx

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        if (
            updated_node.module is None
            or isinstance(updated_node.names, cst.ImportStar)
            or updated_node.relative
        ):
            return updated_node
        module = code_of(updated_node.module)
        targets = {
            RUNTIME_REDIRECTS.get((module, alias.evaluated_name)) for alias in updated_node.names
        }
        if None in targets or len({t[0] for t in targets if t}) != 1:
            return updated_node
        new_module = next(iter(targets))[0]  # type: ignore[index]
        return updated_node.with_changes(module=cst.parse_expression(new_module))


def _place_findings(code: str, ctx: Ctx | None, file: str) -> tuple[str, list[Finding]]:
    """Turn the anchor comments into findings with their line in the migrated code."""
    if ctx is None:
        return code, []
    by_anchor = {p.anchor: p for p in ctx.pending}
    findings: list[Finding] = []
    out: list[str] = []
    pending_anchor: list[int] = []
    pattern = re.compile(r"^\s*" + re.escape(ANCHOR) + r"(\d+)\s*$")
    for line in code.splitlines(keepends=True):
        match = pattern.match(line)
        if match:
            pending_anchor.append(int(match.group(1)))
            continue
        out.append(line)
        for anchor in pending_anchor:
            p = by_anchor[anchor]
            findings.append(Finding(file, len(out), p.kind, p.message, p.source_line))
        pending_anchor = []
    findings.sort(key=lambda f: (f.line, f.kind != "TODO"))
    return "".join(out), findings
