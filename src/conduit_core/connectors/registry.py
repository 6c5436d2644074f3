"""Find connector classes by their YAML ``type``.

Built-ins are listed here by import path so nothing heavy is imported until a
config uses it. Third-party packages add connectors through the entry-point
groups ``conduit.sources`` and ``conduit.destinations``; the entry-point name is
the YAML ``type``. A plugin that fails to import is reported by
``conduit connectors`` and is an error only when a config uses it.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Literal

from conduit_core.connectors.base import BaseDestination, BaseSource
from conduit_core.errors import ConfigError

Kind = Literal["source", "destination"]

_BUILTIN: dict[Kind, dict[str, str]] = {
    "source": {
        "csv": "conduit_core.connectors.csv:CsvSource",
        "json": "conduit_core.connectors.json:JsonSource",
        "ndjson": "conduit_core.connectors.json:NdjsonSource",
        "parquet": "conduit_core.connectors.parquet:ParquetSource",
        "duckdb": "conduit_core.connectors.duckdb:DuckDBSource",
        "sqlite": "conduit_core.connectors.sqlite:SQLiteSource",
        "postgresql": "conduit_core.connectors.postgresql:PostgresSource",
        "mysql": "conduit_core.connectors.mysql:MySQLSource",
        "mariadb": "conduit_core.connectors.mysql:MySQLSource",
    },
    "destination": {
        "csv": "conduit_core.connectors.csv:CsvDestination",
        "ndjson": "conduit_core.connectors.json:NdjsonDestination",
        "json": "conduit_core.connectors.json:NdjsonDestination",
        "parquet": "conduit_core.connectors.parquet:ParquetDestination",
        "duckdb": "conduit_core.connectors.duckdb:DuckDBDestination",
        "sqlite": "conduit_core.connectors.sqlite:SQLiteDestination",
        "postgresql": "conduit_core.connectors.postgresql:PostgresDestination",
        "mysql": "conduit_core.connectors.mysql:MySQLDestination",
        "mariadb": "conduit_core.connectors.mysql:MySQLDestination",
    },
}
_GROUP: dict[Kind, str] = {"source": "conduit.sources", "destination": "conduit.destinations"}
_BASE: dict[Kind, type[BaseSource] | type[BaseDestination]] = {"source": BaseSource, "destination": BaseDestination}


@dataclass(frozen=True)
class ConnectorInfo:
    kind: Kind
    type: str
    origin: str
    target: str
    description: str = ""
    error: str | None = None


def _plugins(kind: Kind) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=_GROUP[kind])}


def origin(ep: EntryPoint) -> str:
    """The package (name and version) an entry point comes from."""
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "entry point"


def _import(target: str) -> type[BaseSource] | type[BaseDestination]:
    module_name, _, attr = target.partition(":")
    cls: type[BaseSource] | type[BaseDestination] = getattr(importlib.import_module(module_name), attr)
    return cls


@cache
def _load(kind: Kind, type_name: str) -> type[BaseSource] | type[BaseDestination]:
    builtin = _BUILTIN[kind].get(type_name)
    if builtin is not None:
        return _import(builtin)
    plugin = _plugins(kind).get(type_name)
    if plugin is None:
        known = sorted({*_BUILTIN[kind], *_plugins(kind)})
        close = difflib.get_close_matches(type_name, known, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        msg = f"unknown {kind} type {type_name!r}; {suggestion}known types: {', '.join(known)}"
        raise ConfigError(msg, hint="install the package that provides it, or fix the spelling")
    try:
        cls = plugin.load()
    except Exception as exc:
        msg = f"{kind} type {type_name!r} from {origin(plugin)} failed to import: {type(exc).__name__}: {exc}"
        raise ConfigError(msg, hint=f"reinstall or upgrade {origin(plugin).split()[0]}") from exc
    if not (isinstance(cls, type) and issubclass(cls, _BASE[kind])):
        msg = f"{kind} type {type_name!r} ({plugin.value}) is not a subclass of {_BASE[kind].__name__}"
        raise ConfigError(msg)
    return cls


def source_class(type_name: str) -> type[BaseSource]:
    cls = _load("source", type_name)
    assert issubclass(cls, BaseSource)
    return cls


def destination_class(type_name: str) -> type[BaseDestination]:
    cls = _load("destination", type_name)
    assert issubclass(cls, BaseDestination)
    return cls


def connector_class(kind: Kind, type_name: str) -> type[BaseSource] | type[BaseDestination]:
    return _load(kind, type_name)


def list_connectors() -> list[ConnectorInfo]:
    """Every known connector, importing each to read its description."""
    infos: list[ConnectorInfo] = []
    for kind in ("source", "destination"):
        entries: dict[str, tuple[str, str]] = {n: ("built-in", t) for n, t in _BUILTIN[kind].items()}
        for name, ep in _plugins(kind).items():
            entries.setdefault(name, (origin(ep), ep.value))
        for name, (source, target) in sorted(entries.items()):
            try:
                cls = _load(kind, name)
            except ConfigError as exc:
                infos.append(ConnectorInfo(kind, name, source, target, error=exc.message))
                continue
            description = cls.description or (cls.__doc__ or "").strip().splitlines()[0:1]
            text = description if isinstance(description, str) else (description[0] if description else "")
            infos.append(ConnectorInfo(kind, name, source, target, text))
    return infos
