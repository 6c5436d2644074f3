"""Parse YAML while remembering where every value came from.

Config errors must name the YAML path *and* the line, so the loader keeps a map
from path tuples (``("resources", 0, "mode")``) to 1-based (line, column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conduit_core.errors import ConfigError, ConfigIssue

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """A parsed YAML document plus the position of each node in it."""

    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: PathKey) -> tuple[int | None, int | None]:
        """Best position for ``path``: the node itself, else its nearest ancestor."""
        for end in range(len(path), -1, -1):
            if (pos := self.positions.get(tuple(path[:end]))) is not None:
                return pos
        return None, None


def format_path(path: PathKey) -> str:
    """Render ``("resources", 0, "mode")`` as ``resources[0].mode``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


#: More values than any real ingest.yml holds: beyond this, anchors and aliases are expanding
#: exponentially (a "billion laughs" document), which would exhaust memory before validation ends.
MAX_VALUES = 100_000


class _Converter:
    """Turns composed nodes into Python values, recording positions and counting what it expands."""

    def __init__(self, located: Located, file: str) -> None:
        self.located, self.file = located, file
        self.values = 0
        self.seen: set[int] = set()
        self.aliases = 0
        # One constructor for every scalar: PyYAML's safe rules for ints, bools, nulls and dates.
        self.constructor = yaml.SafeLoader("")

    def _count(self, node: yaml.Node, path: PathKey) -> None:
        self.values += 1
        if id(node) in self.seen:
            self.aliases += 1
        else:
            self.seen.add(id(node))
        if self.values > MAX_VALUES:
            line, _ = self.located.position(path[:1])
            how = (f"its anchors and aliases expand {self.aliases:,}+ times" if self.aliases
                   else "it is far larger than any ingest.yml")
            issue = ConfigIssue(f"the document expands to more than {MAX_VALUES:,} values: {how}",
                                format_path(path[:1]), line)
            raise ConfigError("Refusing to load the configuration", issues=[issue], file=self.file,
                              hint="remove the nested aliases (*name); an ingest.yml needs no more than a few "
                                   "thousand values")

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self._count(node, path)
        located = self.located
        located.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    line = key_node.start_mark.line + 1
                    issue = ConfigIssue("mapping keys must be plain strings", format_path(path), line)
                    raise ConfigError("Invalid YAML", issues=[issue], file=self.file)
                if key in result:
                    line = key_node.start_mark.line + 1
                    issue = ConfigIssue(f"duplicate key {key!r}", format_path((*path, key)), line)
                    raise ConfigError("Invalid YAML", issues=[issue], file=self.file,
                                      hint="remove one of the two entries")
                child = (*path, key)
                result[key] = self.convert(value_node, child)
                located.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> Located:
    """Parse ``text``; syntax errors become a :class:`ConfigError` with line and column."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "syntax error"
        issue = ConfigIssue(f"YAML syntax error: {problem}", line=line, column=column)
        raise ConfigError("Cannot parse the configuration", issues=[issue], file=file,
                          hint="check indentation and quoting around that line") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Cannot parse {file}: {exc}") from None
    located = Located(data=None)
    if root is None:
        located.data = {}
        return located
    located.data = _Converter(located, file).convert(root, ())
    return located


def read_yaml_file(path: Path) -> Located:
    """Read and parse a YAML file, turning I/O problems into config errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"Configuration file not found: {path}"
        raise ConfigError(msg, hint="pass the file with -f/--file, e.g. `conduit run -f ingest.yml`") from None
    except UnicodeDecodeError as exc:
        msg = f"Configuration file {path} is not valid UTF-8 (byte {exc.start})"
        raise ConfigError(msg, hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {path}: {exc.strerror}") from None
    return parse_yaml(text, str(path))
