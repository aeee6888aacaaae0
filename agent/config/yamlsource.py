"""YAML loading that remembers where every value came from (file and line), with includes.

Validation errors must point at ``bac-giang.yml:412``, not at a Python traceback, so a
:class:`Document` can say where each value's path (``("kpis", 3, "targets", 0, "deadline")``) was
written. It keeps each file's YAML nodes and reads a position from them only when asked: a valid
configuration asks for a handful (its warnings, its includes), so the 17,000 positions of Bắc Giang
are no longer recorded on every load. Dates stay strings here (the schema parses them), so
``2020-13-01`` becomes a clear validation error instead of a crash inside the YAML library.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
MAX_INCLUDE_DEPTH = 8
_STR = "tag:yaml.org,2002:str"
_SCALAR, _MAPPING, _SEQUENCE = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode


# libyaml's parser when PyYAML was built with it (the wheels are): 8× faster than the pure-Python one on
# Bắc Giang's 16,000 lines, with the same nodes and marks. Constructing and resolving stay PyYAML's own.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Resolver(yaml.resolver.Resolver):
    """SafeLoader's implicit types without the timestamp."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def _resolve(kind: Any, value: Any, implicit: Any) -> str:
    """A node's tag. A province file repeats the same plain scalars thousands of times (keys, collector
    names, units): the regular expressions run once per distinct one, and a repeat is a C-level cache hit
    that costs the parser no Python call."""
    return _Resolver().resolve(kind, value, implicit)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader without the implicit timestamp type."""

    yaml_implicit_resolvers = _Resolver.yaml_implicit_resolvers

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.resolve = _resolve  # the instance's, so the parser's self.resolve(...) finds the cache first


@dataclass(frozen=True)
class Problem:
    """One configuration error, already located."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


class ConfigError(Exception):
    """All problems found in a configuration, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class _Part:
    """One file's node tree, and the top-level keys of the merged document it holds.

    ``keys`` maps each key to the offset of its items in the merged list (an included file's ``targets``
    follow the including file's); None: the document's own file, which holds every key of its tree, the
    root included, at offset 0.
    """

    file: str
    root: yaml.Node
    loader: Any  # constructs a key that is not a plain string (``1:``, ``true:``), as the walk did
    keys: dict[Any, int] | None = None

    def reach(self, path: Path_) -> tuple[int, int]:
        """(how many of ``path``'s parts this file holds, the line of the deepest); depth -1: not even the root."""
        node, depth = self.root, 0
        if self.keys is not None and (not path or not isinstance(path[0], str) or path[0] not in self.keys):
            return -1, 0
        for i, part in enumerate(path):
            if isinstance(node, _MAPPING):
                child = self._value(node, part)
            elif isinstance(node, _SEQUENCE) and isinstance(part, int) and not isinstance(part, bool):
                index = part - (self.keys[path[0]] if self.keys is not None and i == 1 else 0)
                child = node.value[index] if 0 <= index < len(node.value) else None
            else:
                child = None
            if child is None:
                break
            node, depth = child, i + 1
        return depth, node.start_mark.line + 1

    def _value(self, node: yaml.MappingNode, part: str | int) -> yaml.Node | None:
        if not isinstance(part, str):
            return None
        for key_node, value_node in node.value:
            if isinstance(key_node, _SCALAR) and key_node.tag == _STR:
                if key_node.value == part:
                    return value_node
                continue
            key = self.loader.construct_object(key_node)
            if isinstance(key, str | int | float | bool) and str(key) == part:
                return value_node
        return None


@dataclass
class Document:
    data: Any
    files: list[str] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)

    def locate(self, path: Path_) -> tuple[str, int | None]:
        """Position of the deepest known prefix of ``path`` (the first file holding it, when several do)."""
        best: tuple[int, str, int | None] = (-1, self.files[0] if self.files else "<config>", None)
        for part in self.parts:
            depth, line = part.reach(path)
            if depth > best[0]:
                best = (depth, part.file, line)
        return best[1], best[2]

    def position(self, path: Path_, file: str | None = None) -> tuple[str, int | None]:
        """Position of ``path`` itself; ``file`` (default the document's first), without a line, when no file
        holds it."""
        for part in self.parts:
            depth, line = part.reach(path)
            if depth == len(path):
                return part.file, line
        return (file or (self.files[0] if self.files else "<config>"), None)

    def positions(self) -> dict[Path_, tuple[str, int]]:
        """Every path's position, as :meth:`locate` gives it (the tests compare the two ways)."""
        out: dict[Path_, tuple[str, int]] = {}
        for part in self.parts:
            _positions(part, part.root, (), out)
        return out


def _positions(part: _Part, node: yaml.Node, path: Path_, out: dict[Path_, tuple[str, int]]) -> None:
    if len(path) == 1 and part.keys is not None and path[0] not in part.keys:
        return
    if path or part.keys is None:
        out.setdefault(path, (part.file, node.start_mark.line + 1))
    if isinstance(node, _MAPPING):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, _SCALAR) and key_node.tag == _STR \
                else part.loader.construct_object(key_node)
            if isinstance(key, str | int | float | bool):
                _positions(part, value_node, (*path, str(key)), out)
    elif isinstance(node, _SEQUENCE):
        offset = part.keys[path[0]] if part.keys is not None and len(path) == 1 else 0
        for i, item in enumerate(node.value):
            _positions(part, item, (*path, i + offset), out)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _build(loader: _Loader, node: yaml.Node, file: str, errors: list[Problem], path: tuple[Any, ...] = ()) -> Any:
    """The node's value. A string is its node's text (most of a province file); other scalars go through the
    constructor. ``path`` is the node's, as a tuple to format only when a key is bad."""
    if isinstance(node, _MAPPING):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, _SCALAR) and key_node.tag == _STR:
                key = key_node.value
            else:
                key = loader.construct_object(key_node)
                if not isinstance(key, str | int | float | bool):
                    errors.append(Problem(file, key_node.start_mark.line + 1, format_path(path),
                                          "mapping keys must be plain scalars"))
                    continue
            if key in result:
                errors.append(Problem(file, key_node.start_mark.line + 1, format_path((*path, str(key))),
                                      "duplicate key"))
                continue
            if isinstance(value_node, _SCALAR) and value_node.tag == _STR:
                result[key] = value_node.value
            else:
                result[key] = _build(loader, value_node, file, errors, (*path, str(key)))
        return result
    if isinstance(node, _SEQUENCE):
        return [item.value if isinstance(item, _SCALAR) and item.tag == _STR
                else _build(loader, item, file, errors, (*path, i)) for i, item in enumerate(node.value)]
    if node.tag == _STR and isinstance(node, _SCALAR):
        return node.value
    return loader.construct_object(node)


def _parse_file(path: Path, errors: list[Problem]) -> Document:
    name = str(path)
    doc = Document(None, files=[name])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # UnicodeDecodeError has none
        errors.append(Problem(name, None, "", f"cannot read: {why}"))
        return doc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _build(loader, node, name, errors)
            doc.parts.append(_Part(name, node, loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        errors.append(Problem(name, mark.line + 1 if mark else None, "", f"invalid YAML: {problem}"))
    finally:
        loader.dispose()
    return doc


def _merge(into: Document, extra: Document, errors: list[Problem]) -> None:
    """Lists at the top level are concatenated, mappings joined; a key set twice is an error."""
    if not isinstance(extra.data, dict):
        if extra.data is not None:
            errors.append(Problem(extra.files[0], 1, "", "an included file must be a mapping"))
        return
    offsets: dict[Any, int] = {}  # each merged key -> where its items start in the joined list
    for key, value in extra.data.items():
        if key not in into.data:
            into.data[key] = value
            offsets[key] = 0
        elif isinstance(into.data[key], list) and isinstance(value, list):
            offsets[key] = len(into.data[key])
            into.data[key].extend(value)
        elif isinstance(into.data[key], dict) and isinstance(value, dict):
            clash = sorted(set(into.data[key]) & set(value))
            if clash:
                file, line = extra.position((key, clash[0]))
                errors.append(Problem(file, line, f"{key}.{clash[0]}", "already set in another file"))
                continue
            into.data[key].update(value)
            offsets[key] = 0
        else:
            file, line = extra.position((key,))
            errors.append(Problem(file, line, key, "already set in another file"))
            continue
    for part in extra.parts:
        held = offsets if part.keys is None else {k: part.keys[k] + offsets[k] for k in offsets if k in part.keys}
        into.parts.append(_Part(part.file, part.root, part.loader, dict(held)))
    into.files.extend(extra.files)


def load_document(path: str | Path, _depth: int = 0, _seen: tuple[Path, ...] = ()) -> Document:
    """Read ``path`` and the files its top-level ``include:`` list names, relative to it."""
    errors: list[Problem] = []
    resolved = Path(path).resolve()
    doc = _parse_file(Path(path), errors)
    if errors:
        raise ConfigError(errors)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise ConfigError([Problem(str(path), 1, "", "the configuration must be a mapping")])
    includes = doc.data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        file, line = doc.position(("include",), str(path))
        raise ConfigError([Problem(file, line, "include", "expected a list of file names")])
    for i, name in enumerate(includes):
        target = (resolved.parent / name).resolve()
        file, line = doc.position(("include", i), str(path))
        if target in _seen or target == resolved:
            errors.append(Problem(file, line, f"include[{i}]", f"include cycle through {name}"))
            continue
        if _depth >= MAX_INCLUDE_DEPTH:
            errors.append(Problem(file, line, f"include[{i}]", "includes nested too deeply"))
            continue
        try:
            extra = load_document(Path(path).parent / name, _depth + 1, (*_seen, resolved))
        except ConfigError as exc:
            errors.extend(exc.problems)
            continue
        _merge(doc, extra, errors)
    if errors:
        raise ConfigError(errors)
    return doc
