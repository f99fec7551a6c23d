"""Loading a 1.x conf.yaml safely into a `YamlDoc` (values, lines, consumed keys) and
validating it against the schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neural_coder.transforms.errors import ConfigError

from .schema import ANY, SCHEMA, ListOf, MapOf, Scalar, Text, Union

Keys = tuple[str | int, ...]

# --------------------------------------------------------------------------------------
# loading


class _PrunerMap(dict):
    """A mapping written with the 1.x `!Pruner` tag."""


class _Loader(yaml.SafeLoader):
    """SafeLoader plus the `!Pruner` tag; nothing here constructs Python objects."""


def _construct_pruner(loader: _Loader, node: yaml.Node) -> _PrunerMap:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!Pruner must tag a mapping", node.start_mark
        )
    return _PrunerMap(loader.construct_mapping(node, deep=True))


_Loader.add_constructor("!Pruner", _construct_pruner)


@dataclass
class YamlDoc:
    """One loaded conf.yaml, with the line of every key and what has been read."""

    path: Path
    data: dict[str, Any]
    lines: dict[Keys, int]
    consumed: set[Keys] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.path.name

    def line(self, keys: Keys) -> int | None:
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None

    def has(self, *keys: str | int) -> bool:
        return self._lookup(keys) is not _MISSING

    def get(self, *keys: str | int, default: Any = None) -> Any:
        """The value at `keys` (marked consumed), or `default`."""
        value = self._lookup(keys)
        if value is _MISSING:
            return default
        self.consumed.add(tuple(keys))
        return value

    def _lookup(self, keys: tuple[str | int, ...]) -> Any:
        node: Any = self.data
        for key in keys:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                return _MISSING
        # 1.x read every empty value (`SquadF1:`) as {} (validate() already refused
        # an empty value where a scalar belongs)
        return {} if node is None and keys else node

    def leaves(self) -> Iterator[tuple[Keys, Any]]:
        yield from _leaves(self.data, ())

    def unconsumed(self) -> list[tuple[Keys, Any]]:
        out = []
        for keys, value in self.leaves():
            if not any(keys[: len(c)] == c for c in self.consumed):
                out.append((keys, value))
        return out


class _Missing:
    pass


_MISSING = _Missing()


def _leaves(value: Any, keys: Keys) -> Iterator[tuple[Keys, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*keys, k))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            yield from _leaves(v, (*keys, i))
    elif keys:
        yield keys, value


def dotted(keys: Keys) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def load(path: Path) -> YamlDoc:
    """Load and validate a 1.x conf.yaml. Missing file, bad YAML, tags, schema: ConfigError."""
    if not path.is_file():
        raise ConfigError(
            f"the 1.x configuration {path} does not exist",
            path=path,
            hint="the yaml path in the script is read relative to the script's folder",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the yaml as UTF-8", path=path
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, path)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        tag = getattr(exc, "problem", "") or ""
        raise ConfigError(
            f"refused to load: {tag}; a 1.x conf.yaml holds plain YAML only (and !Pruner), "
            "it is never executed",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a 1.x conf.yaml must be a mapping at the top level", path=path, line=1)
    lines: dict[Keys, int] = {}
    if node is not None:
        _LineRecorder(path, lines).walk(node, ())
    doc = YamlDoc(path=path, data=data, lines=lines)
    validate(doc)
    return doc


# A 1.x conf.yaml has tens of values; aliases (`*name`) could make a few lines expand
# without end (a recursive alias, or aliases of aliases), so the walk is bounded.
_MAX_NODES = 100_000


class _LineRecorder:
    """The line of every key, walking the composed YAML nodes. Refuses a recursive
    alias, a document that expands past `_MAX_NODES` values, and a key written twice in
    one mapping (YAML keeps the last one and drops the other silently)."""

    def __init__(self, path: Path, lines: dict[Keys, int]) -> None:
        self.path = path
        self.lines = lines
        self.budget = _MAX_NODES
        self.open: set[int] = set()  # the collection nodes on the current path

    def walk(self, node: yaml.Node, keys: Keys) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise ConfigError(
                f"the yaml expands to more than {_MAX_NODES} values (aliases of aliases?); "
                "a 1.x conf.yaml is small: write the values out",
                path=self.path,
                line=node.start_mark.line + 1,
            )
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return
        if id(node) in self.open:
            raise ConfigError(
                f"`{dotted(keys)}` is a recursive alias (it contains itself); write the values out",
                path=self.path,
                line=node.start_mark.line + 1,
            )
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*keys, k.value)
                self.lines[key] = k.start_mark.line + 1
                self.walk(v, key)
        else:
            for i, item in enumerate(node.value):
                key = (*keys, i)
                self.lines[key] = item.start_mark.line + 1
                self.walk(item, key)
        self.open.discard(id(node))


def _refuse_duplicate_keys(root: yaml.Node, path: Path) -> None:
    """A key written twice in one mapping: YAML keeps the last value and drops the
    other silently. Checked on the composed nodes, before `<<: *name` merges (whose
    keys may be overridden on purpose) are flattened in."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            written: dict[tuple[str, str], int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    if (k.tag, k.value) in written:
                        raise ConfigError(
                            f"`{k.value}` is written twice in one mapping (lines "
                            f"{written[(k.tag, k.value)]} and {line}); YAML would keep the last "
                            "one and drop the other silently: remove one",
                            path=path,
                            line=line,
                        )
                    written[(k.tag, k.value)] = line
                todo += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


def validate(doc: YamlDoc) -> None:
    """Raise ConfigError (file:line, key, what is allowed) for unknown keys and wrong types."""
    problem = _check(doc.data, SCHEMA, ())
    if problem is None:
        return
    keys, message = problem
    raise ConfigError(
        f"`{dotted(keys) or '<top level>'}`: {message}", path=doc.path, line=doc.line(keys)
    )


def _check(value: Any, spec: object, keys: Keys) -> tuple[Keys, str] | None:
    if isinstance(spec, dict):
        if value is None:  # `key:` with nothing under it reads as {} in 1.x
            return None
        if not isinstance(value, dict):
            return keys, f"expected a mapping, got {_type_name(value)}"
        for k, v in value.items():
            if k not in spec:
                allowed = ", ".join(str(s) for s in spec)
                return (*keys, k), f"unknown key; allowed here: {allowed}"
            problem = _check(v, spec[k], (*keys, k))
            if problem:
                return problem
        return None
    if isinstance(spec, MapOf):
        if value is None:
            return None
        if not isinstance(value, dict):
            return keys, f"expected a mapping, got {_type_name(value)}"
        for k, v in value.items():
            problem = _check(v, spec.value, (*keys, k))
            if problem:
                return problem
        return None
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return keys, f"expected a list, got {_type_name(value)}"
        for i, item in enumerate(value):
            problem = _check(item, spec.item, (*keys, i))
            if problem:
                return problem
        return None
    if isinstance(spec, Union):
        problems = [_check(value, option, keys) for option in spec.options]
        if all(problems):
            deepest = max(problems, key=lambda p: len(p[0]) if p else 0)
            if deepest and len(deepest[0]) > len(keys):
                return deepest
            shown = "" if isinstance(value, dict | list) else f" {value!r}"
            return keys, f"expected {spec.label}, got {_type_name(value)}{shown}"
        return None
    if isinstance(spec, Text):
        if not isinstance(value, str):
            return keys, f"expected {spec.label}, got {_type_name(value)}"
        try:
            spec.parse(value)
        except ValueError:
            return keys, f"expected {spec.label}, got {value!r}"
        return None
    assert isinstance(spec, Scalar)
    if spec is ANY:
        return None
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        return keys, f"expected {spec.label}, got {_type_name(value)} {value!r}"
    if spec.choices and value not in spec.choices:
        return keys, f"{value!r} is not allowed; expected {spec.label}"
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)
