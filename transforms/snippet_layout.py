"""black's layout of the snippets the tool generates, without importing black.

Covers exactly the subset the snippet builders produce: one simple statement a line
(`target = callee(...)` or `callee(...)`, dotted names, keyword arguments, nested calls,
list/dict literals, lambdas with one parameter, arithmetic and conditional expressions that
fit their line; `global a, b` that fits). A line too long is laid out as black does: split at
the last bracket pair (the call's parentheses, not the assignment's optional ones), the
arguments on one line when they fit, else one per line with a trailing comma, each argument
(or dict value under a string or number key) split the same way; list and dict literals that
split put one element a line. Strings get black's double quotes; a raw string is kept as it
is when it already has them (migrate's regexes).

Anything else (a statement it does not recognise, spacing black would change, a split black
would make some other way) returns None and the caller asks black: never a guess.
`tests/coder/test_snippet_layout.py` compares it with black on recorded and generated snippets.
"""

from __future__ import annotations

import re

KEYWORD_OPERATORS = {"if", "else", "is", "not", "in", "and", "or", "lambda"}
KEYWORDS = KEYWORD_OPERATORS | {
    "False", "None", "True", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "except", "finally", "for", "from", "global", "import", "nonlocal",
    "pass", "raise", "return", "try", "while", "with", "yield",
}  # fmt: skip
BINARY = {"+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">", ">="}
OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = set(OPENERS.values())
TOKEN = re.compile(
    r"""(?P<space>[ ]+)
    |(?P<raw>r"(?:[^"\\\n]|\\[^"\n])*"(?!["']))
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?(?![A-Za-z0-9_.]))
    |(?P<string>"[^"\\\n]*"(?!["'])|'[^'"\\\n]*'(?!["']))
    |(?P<bad>\*\*|//=|[-+*/%&|^@<>:!]=(?<![<>=!]=)|->|[~;\\@&|^`$?])
    |(?P<op>//|==|!=|<=|>=|[-+*/%<>()\[\]{},.=:])""",
    re.VERBOSE,
)
INDENT = 4


class Unsupported(Exception):
    """Outside the subset: black decides."""


class Tok:
    __slots__ = ("kind", "text", "depth", "space")

    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text, self.depth, self.space = kind, text, 0, ""

    @property
    def is_keyword(self) -> bool:
        return self.kind == "name" and self.text in KEYWORDS


def tokenize(line: str) -> tuple[list[Tok], str]:
    """The tokens, and the line with black's quotes (to compare with black's spacing)."""
    tokens: list[Tok] = []
    pieces: list[str] = []
    position = 0
    while position < len(line):
        m = TOKEN.match(line, position)
        if m is None or m.lastgroup == "bad":
            raise Unsupported(line)
        position = m.end()
        text = m.group()
        if m.lastgroup == "string" and text[0] == "'":
            text = '"' + text[1:-1] + '"'  # no quote or backslash inside (see TOKEN)
        pieces.append(text)
        if m.lastgroup == "raw":  # (a regex: kept as it is, as black keeps it)
            tokens.append(Tok("string", text))
        elif m.lastgroup != "space":
            tokens.append(Tok(m.lastgroup or "", text))
    stack: list[int] = []
    for index, tok in enumerate(tokens):
        if tok.text in CLOSERS and tok.kind == "op":
            if not stack or OPENERS[tokens[stack[-1]].text] != tok.text:
                raise Unsupported(line)
            stack.pop()
        tok.depth = len(stack)
        if tok.text in OPENERS and tok.kind == "op":
            stack.append(index)
    if stack or not tokens:
        raise Unsupported(line)
    return tokens, "".join(pieces)


def _enclosing(tokens: list[Tok], index: int) -> str:
    """The innermost open bracket around `index` ("" at the top), and what opens it: "call"
    for a call's or subscript's bracket, else the bracket itself."""
    depth = tokens[index].depth
    for j in range(index - 1, -1, -1):
        if tokens[j].kind == "op" and tokens[j].text in OPENERS and tokens[j].depth == depth - 1:
            call = tokens[j].text == "(" and _is_trailer(tokens, j)
            return "call" if call else tokens[j].text
    return ""


def _is_trailer(tokens: list[Tok], index: int) -> bool:
    if index == 0 or tokens[index].text == "{":
        return False
    prev = tokens[index - 1]
    if prev.kind == "name":
        return not prev.is_keyword
    return prev.kind == "op" and prev.text in CLOSERS or prev.kind == "string"


def _unary(tokens: list[Tok], index: int) -> bool:
    if index == 0:
        return True
    prev = tokens[index - 1]
    if prev.kind == "op":
        return prev.text not in CLOSERS
    return prev.kind == "name" and prev.text in KEYWORD_OPERATORS


def render(tokens: list[Tok]) -> str:
    """Part of a line whose spacing `space_out` set."""
    return tokens[0].text + "".join(t.space + t.text for t in tokens[1:])


def space_out(tokens: list[Tok]) -> str:
    """Sets black's spacing before each token of a line and returns the line;
    raises Unsupported where the rules here end."""
    out: list[str] = []
    lambda_open = False
    for i, tok in enumerate(tokens):
        t = tok.text
        if tok.kind == "name" and t == "lambda":
            if lambda_open:
                raise Unsupported("nested lambda")
            # one plain parameter only: `lambda c: ...`
            if not (
                i + 2 < len(tokens)
                and tokens[i + 1].kind == "name"
                and not tokens[i + 1].is_keyword
                and tokens[i + 2].text == ":"
            ):
                raise Unsupported("lambda parameters")
            lambda_open = True
        if i == 0:
            if tok.kind == "op" and (t in CLOSERS or t in ",.=:" or t in BINARY - {"-", "+"}):
                raise Unsupported(t)
            out.append(t)
            continue
        prev = tokens[i - 1]
        p = prev.text
        space = " "
        if tok.kind == "op":
            if t in CLOSERS and p == ",":
                raise Unsupported("magic trailing comma")
            if t in CLOSERS or t == ",":
                space = ""
            elif t == ".":
                if prev.kind not in ("name",) and p not in CLOSERS or prev.is_keyword:
                    raise Unsupported("dot")
                space = ""
            elif t in ("(", "["):
                if _is_trailer(tokens, i):
                    space = ""
                elif t == "[" and prev.kind == "string":
                    raise Unsupported("subscripted string")
            elif t == "=":
                where = _enclosing(tokens, i)
                keyword = prev.kind == "name" and not prev.is_keyword and tokens[i - 2].text in "(,"
                if where == "call" and keyword:
                    space = ""
                elif where != "":
                    raise Unsupported("= inside brackets")
            elif t == ":":
                where = _enclosing(tokens, i)
                if lambda_open and prev.kind == "name":
                    lambda_open = False
                elif where != "{":
                    raise Unsupported("colon")
                space = ""
            elif t in BINARY and t in "+-*" and _unary(tokens, i):
                if t == "*":
                    raise Unsupported("unpacking")
        if prev.kind == "op":
            if p in OPENERS or p == ".":
                space = ""
            elif p == "=" and _enclosing(tokens, i - 1) == "call":
                space = ""
            elif p in ("-", "+") and _unary(tokens, i - 1):
                space = ""
        if prev.kind == "string" and tok.kind in ("string", "name", "number"):
            raise Unsupported("adjacent literals")
        if prev.kind == "number" and tok.kind in ("string", "name", "number"):
            raise Unsupported("adjacent literals")
        if tok.kind == "string" and prev.kind == "name" and not prev.is_keyword:
            raise Unsupported("string prefix")
        tok.space = space
        out.append(space + t)
    if lambda_open:
        raise Unsupported("lambda")
    return "".join(out)


def _items(tokens: list[Tok]) -> list[list[Tok]]:
    """`tokens` split at their top-level commas (the depth of the first token)."""
    depth = tokens[0].depth
    if any(t.depth == depth and t.kind == "name" and t.text in ("for", "async") for t in tokens):
        # a comprehension: its commas (`for a, b in loader`) are no item separators, and
        # black splits at `for` first
        raise Unsupported("comprehension")
    items: list[list[Tok]] = [[]]
    for tok in tokens:
        if tok.text == "," and tok.kind == "op" and tok.depth == depth:
            items.append([])
        else:
            items[-1].append(tok)
    if any(not item for item in items):
        raise Unsupported("trailing comma")  # black's magic trailing comma
    return items


def _has_delimiters(tokens: list[Tok]) -> bool:
    """Whether black would find a delimiter to split at, other than commas."""
    depth = tokens[0].depth
    for i, tok in enumerate(tokens):
        if tok.depth != depth:
            continue
        if tok.kind == "op" and tok.text in BINARY:
            return True
        if tok.kind == "name" and tok.text in KEYWORD_OPERATORS:
            return True
        if tok.text == "." and i and tokens[i - 1].text in CLOSERS:
            return True
    return False


class Layout:
    def __init__(self, line_length: int) -> None:
        self.limit = line_length

    def fits(self, depth: int, text: str) -> bool:
        return INDENT * depth + len(text) <= self.limit

    def statement(self, line: str) -> list[str]:
        tokens, quoted = tokenize(line)
        if tokens[0].text in ("global", "nonlocal") and _names_list(tokens[1:]):
            text = space_out(tokens)
            if text != quoted or not self.fits(0, text):
                raise Unsupported("declaration")
            return [text]
        if tokens[0].kind != "name" or tokens[0].is_keyword:
            raise Unsupported("statement")  # a keyword's, or a docstring
        text = space_out(tokens)
        if text != quoted:
            raise Unsupported("spacing black would change")
        equals = [i for i, t in enumerate(tokens) if t.text == "=" and t.depth == 0]
        if len(equals) > 1:
            raise Unsupported("chained assignment")
        if any(t.text == "," and t.depth == 0 for t in tokens):
            raise Unsupported("bare tuple")  # black adds parentheses
        start = equals[0] + 1 if equals else 0
        target = tokens[: equals[0]] if equals else []
        if target and not _dotted(target):
            raise Unsupported("assignment target")
        value = tokens[start:]
        if not value or value[0].text == "(" and value[0].kind == "op":
            raise Unsupported("parenthesised value")  # black drops redundant parentheses
        if self.fits(0, text):
            return [text]
        # the value must be `dotted.name(...)`: black splits at its parentheses
        if value[-1].text != ")":
            raise Unsupported("value shape")
        opener = _opener(tokens)
        if opener <= start:
            raise Unsupported("value shape")
        if not _dotted(tokens[start:opener]):
            raise Unsupported("callee")
        return self.bracket(tokens[: opener + 1], tokens[opener + 1 : -1], ")", 0)

    def bracket(self, head: list[Tok], body: list[Tok], tail: str, depth: int) -> list[str]:
        head_text = render(head)
        if not body or not self.fits(depth, head_text):
            raise Unsupported("head")
        atom = head[-1].text in "[{" and not _is_trailer(head, len(head) - 1)
        items = _items(body)
        explode = atom and len(items) > 1
        lines = [head_text]
        lines += [" " * INDENT + line for line in self.body(body, items, depth + 1, explode)]
        lines.append(tail)
        return lines

    def body(self, body: list[Tok], items: list[list[Tok]], depth: int, explode: bool) -> list[str]:
        if not explode:
            text = render(body)
            if self.fits(depth, text):
                return [text]
            if len(items) == 1:
                if _has_delimiters(body):
                    raise Unsupported("delimiters")
                return self.item(body, depth, comma=False)
        lines: list[str] = []
        for item in items:
            lines += self.item(item, depth, comma=True)
        return lines

    def item(self, tokens: list[Tok], depth: int, comma: bool) -> list[str]:
        text = render(tokens) + ("," if comma else "")
        if self.fits(depth, text):
            return [text]
        last = tokens[-1]
        if not (last.kind == "op" and last.text in CLOSERS):
            raise Unsupported("item shape")
        opener = _opener(tokens)
        if not _item_head(tokens[:opener]):
            raise Unsupported("item head")
        tail = last.text + ("," if comma else "")
        return self.bracket(tokens[: opener + 1], tokens[opener + 1 : -1], tail, depth)


def _opener(tokens: list[Tok]) -> int:
    """The index in `tokens` of the bracket the last token closes (those between are deeper)."""
    depth = tokens[-1].depth
    for i in range(len(tokens) - 2, -1, -1):
        if tokens[i].depth == depth and tokens[i].kind == "op" and tokens[i].text in OPENERS:
            return i
    raise Unsupported("bracket")


def _dotted(tokens: list[Tok]) -> bool:
    if not tokens or len(tokens) % 2 == 0:
        return False
    for i, tok in enumerate(tokens):
        if i % 2 == 0 and not (tok.kind == "name" and not tok.is_keyword):
            return False
        if i % 2 == 1 and tok.text != ".":
            return False
    return True


def _names_list(tokens: list[Tok]) -> bool:
    """`name, name, ...`"""
    if not tokens or len(tokens) % 2 == 0:
        return False
    return all(
        tok.kind == "name" and not tok.is_keyword if i % 2 == 0 else tok.text == ","
        for i, tok in enumerate(tokens)
    )


def _item_head(tokens: list[Tok]) -> bool:
    """`[name=|key: ][lambda p: ]dotted.callee` or nothing (a list or dict literal); a dict
    key is a string or a number."""
    i = 0
    if len(tokens) >= 2 and tokens[1].text == "=" and tokens[0].kind == "name":
        i = 2
    elif len(tokens) >= 2 and tokens[1].text == ":" and tokens[0].kind in ("string", "number"):
        i = 2
    if tokens[i : i + 1] and tokens[i].text == "lambda":
        i += 3
    rest = tokens[i:]
    return not rest or _dotted(rest)


def format_snippet(code: str, line_length: int) -> str | None:
    """black's `format_str(code, Mode(line_length))` for the subset, else None."""
    if not code.endswith("\n") or not code.isascii():
        return None
    limit = max(line_length, 40)
    out: list[str] = []
    try:
        for line in code[:-1].split("\n"):
            if line.startswith("#"):
                if not re.fullmatch(r"# \S(.*\S)?", line):
                    return None
                out.append(line)
                continue
            if not line or line[0] == " " or line.endswith(" "):
                return None
            out += Layout(limit).statement(line)
    except Unsupported:
        return None
    return "\n".join(out) + "\n"
