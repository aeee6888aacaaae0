"""YAML loading that remembers where every value came from (file and line), with includes.

Validation errors must point at ``bac-giang.yml:412``, not at a Python traceback, so the loader
keeps a map from each value's path (``("kpis", 3, "targets", 0, "deadline")``) to its position.
Dates stay strings here (the schema parses them), so ``2020-13-01`` becomes a clear validation
error instead of a crash inside the YAML library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
MAX_INCLUDE_DEPTH = 8
_STR = "tag:yaml.org,2002:str"
_RESOLVED: dict[tuple[Any, Any], str] = {}  # (plain scalar, implicit flags) -> tag, shared by every load


# libyaml's parser when PyYAML was built with it (the wheels are): 8× faster than the pure-Python one on
# Bắc Giang's 16,000 lines, with the same nodes and marks. Constructing and resolving stay PyYAML's own.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader without the implicit timestamp type."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # A province file repeats the same plain scalars thousands of times (keys, collector names, units):
        # the regular expressions run once per distinct one.
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = _RESOLVED[key] = super().resolve(kind, value, implicit)
        return tag


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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


@dataclass
class Document:
    data: Any
    where: dict[Path_, tuple[str, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def locate(self, path: Path_) -> tuple[str, int | None]:
        """Position of the deepest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.where:
                return self.where[path[:end]]
        return (self.files[0] if self.files else "<config>", None)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _scalar(loader: _Loader, node: yaml.Node) -> Any:
    """A string is its node's text (most of a province file); other types go through the constructor."""
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    return loader.construct_object(node)


def _walk(loader: _Loader, node: yaml.Node, path: Path_, file: str, doc: Document, errors: list[Problem]):
    doc.where[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node)
            if not isinstance(key, str | int | float | bool):
                errors.append(Problem(file, key_node.start_mark.line + 1, format_path(path),
                                      "mapping keys must be plain scalars"))
                continue
            if key in result:
                errors.append(Problem(file, key_node.start_mark.line + 1, format_path((*path, str(key))),
                                      "duplicate key"))
                continue
            result[key] = _walk(loader, value_node, (*path, str(key)), file, doc, errors)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, (*path, i), file, doc, errors) for i, item in enumerate(node.value)]
    return _scalar(loader, node)


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
            doc.data = _walk(loader, node, (), name, doc, errors)
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
    positions: dict[Any, list[tuple[Path_, tuple[str, int]]]] = {}  # by top-level key: one pass, not one per key
    for path, position in extra.where.items():
        if path:
            positions.setdefault(path[0], []).append((path, position))
    for key, value in extra.data.items():
        if key not in into.data:
            into.data[key] = value
            offset: int | None = None
        elif isinstance(into.data[key], list) and isinstance(value, list):
            offset = len(into.data[key])
            into.data[key].extend(value)
        elif isinstance(into.data[key], dict) and isinstance(value, dict):
            clash = sorted(set(into.data[key]) & set(value))
            if clash:
                file, line = extra.where.get((key, clash[0]), (extra.files[0], None))
                errors.append(Problem(file, line, f"{key}.{clash[0]}", "already set in another file"))
                continue
            into.data[key].update(value)
            offset = None
        else:
            file, line = extra.where.get((key,), (extra.files[0], None))
            errors.append(Problem(file, line, key, "already set in another file"))
            continue
        for path, position in positions.get(key, ()):
            if offset is not None and len(path) > 1 and isinstance(path[1], int):
                path = (key, path[1] + offset, *path[2:])
            into.where.setdefault(path, position)
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
        file, line = doc.where.get(("include",), (str(path), None))
        raise ConfigError([Problem(file, line, "include", "expected a list of file names")])
    for i, name in enumerate(includes):
        target = (resolved.parent / name).resolve()
        file, line = doc.where.get(("include", i), (str(path), None))
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
