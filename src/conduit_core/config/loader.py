"""Load ingest.yml: parse, substitute variables, validate, cross-check.

Every problem is collected and reported at once, each with its YAML path and
line, in a single :class:`~conduit_core.errors.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from conduit_core.config.envsubst import substitute_tree
from conduit_core.config.issues import suggest, validation_issues
from conduit_core.config.models import ConnectorEntry, IngestConfig, ResourceConfig, Settings, StateConfig
from conduit_core.config.yaml_source import Located, PathKey, format_path, read_yaml_file
from conduit_core.connectors import registry
from conduit_core.connectors.base import PluginOptions
from conduit_core.errors import ConfigError, ConfigIssue

_TOP_LEVEL = ("version", "settings", "state", "sources", "destinations", "resources")
_ENTRY_KEYS = ("name", "type")


class _Collector:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.issues: list[ConfigIssue] = []

    def add(self, message: str, path: PathKey) -> None:
        line, column = self.located.position(path)
        self.issues.append(ConfigIssue(message, format_path(path), line, column))

    def validate(self, model: type[BaseModel], data: Any, path: PathKey, context: Mapping[str, Any]) -> Any:
        try:
            return model.model_validate(data, context=dict(context))
        except ValidationError as exc:
            self.issues.extend(validation_issues(exc, self.located, path, model))
            return None


def load_env(base_dir: Path) -> dict[str, str]:
    """The process environment over the values of ``.env`` beside the config."""
    env_file = base_dir / ".env"
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.is_file() else {}
    return {**values, **os.environ}


def _connectors(data: Any, kind: registry.Kind, section: str, out: _Collector,
                context: Mapping[str, Any]) -> tuple[list[ConnectorEntry], dict[str, str]]:
    """Validated entries, plus name -> type of every entry that has both (valid or not)."""
    if data is None:
        return [], {}
    if not isinstance(data, list):
        out.add(f"{section} must be a list of entries, each with 'name' and 'type'", (section,))
        return [], {}
    entries: list[ConnectorEntry] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(data):
        path: PathKey = (section, i)
        if not isinstance(raw, dict):
            out.add("each entry must be a mapping with 'name' and 'type'", path)
            continue
        name, type_name = raw.get("name"), raw.get("type")
        for key in _ENTRY_KEYS:
            if not isinstance(raw.get(key), str) or not raw.get(key):
                out.add(f"required key {key!r} is missing or not a string", (*path, key))
        if not isinstance(name, str) or not isinstance(type_name, str):
            continue
        if name in seen:
            out.add(f"duplicate {kind} name {name!r}", (*path, "name"))
        seen[name] = type_name
        try:
            cls = registry.connector_class(kind, type_name)
        except ConfigError as exc:
            out.add(exc.message + (f" ({exc.hint})" if exc.hint else ""), (*path, "type"))
            continue
        options = {k: v for k, v in raw.items() if k not in _ENTRY_KEYS}
        validated = out.validate(cls.Options, options, path, context)
        # Options already reported their own errors; a placeholder keeps them from being reported twice.
        placeholder = validated if validated is not None else PluginOptions()
        entry = out.validate(ConnectorEntry, {"name": name, "type": type_name, "options": placeholder}, path, context)
        if validated is not None and entry is not None:
            entries.append(entry)
    return entries, seen


def _cross_check(raw: dict[str, Any], path: PathKey, out: _Collector, sources: Mapping[str, str],
                 destinations: Mapping[str, str]) -> None:
    """Reference checks on the raw entry, so they are reported even if it has other errors."""
    for key, defined, kind in (("source", sources, "source"), ("destination", destinations, "destination")):
        ref = raw.get(key)
        if isinstance(ref, str) and ref not in defined:
            out.add(f"unknown {kind} {ref!r}{suggest(ref, defined)}; "
                    f"defined {kind}s: {', '.join(sorted(defined)) or 'none'}", (*path, key))
    transforms = raw.get("transforms")
    for j, step in enumerate(transforms if isinstance(transforms, list) else []):
        lookup = step.get("join") if isinstance(step, dict) else None
        ref = lookup.get("with") if isinstance(lookup, dict) else None
        if isinstance(ref, str) and ref not in sources:
            out.add(f"join with unknown source {ref!r}{suggest(ref, sources)}; a lookup is one of the sources: "
                    f"{', '.join(sorted(sources)) or 'none'}", (*path, "transforms", j, "join", "with"))
    if raw.get("mode") != "merge":
        return
    if not raw.get("primary_key"):
        out.add("mode 'merge' needs primary_key (the column(s) that identify a row)", (*path, "mode"))
    dest_type = destinations.get(str(raw.get("destination")))
    if dest_type is not None:
        try:
            merge = registry.destination_class(dest_type).capabilities.merge
        except ConfigError:
            return  # the unknown type is reported with the destination
        if not merge:
            out.add(f"destination type {dest_type!r} does not support mode 'merge'; use append or "
                    "full_refresh, or a table destination", (*path, "mode"))


def _resources(data: Any, out: _Collector, context: Mapping[str, Any], sources: Mapping[str, str],
               destinations: Mapping[str, str]) -> list[ResourceConfig]:
    if not isinstance(data, list) or not data:
        out.add("resources must be a non-empty list", ("resources",))
        return []
    resources: list[ResourceConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        path: PathKey = ("resources", i)
        if isinstance(raw, dict):
            _cross_check(raw, path, out, sources, destinations)
            name = raw.get("name")
            if isinstance(name, str) and name in seen:
                out.add(f"duplicate resource name {name!r}", (*path, "name"))
            seen.add(str(name))
        resource = out.validate(ResourceConfig, raw, path, context)
        if resource is not None:
            resources.append(resource)
    return resources


def load_config(file: str | Path, *, env: Mapping[str, str] | None = None) -> IngestConfig:
    """Load and validate ``file``; raise :class:`ConfigError` listing every problem."""
    path = Path(file).resolve()
    located = read_yaml_file(path)
    if not isinstance(located.data, dict):
        out = _Collector(located)
        out.add("the file must be a mapping with sources, destinations and resources", ())
        raise ConfigError("Invalid configuration", issues=out.issues, file=str(file))
    data, env_issues = substitute_tree(located, load_env(path.parent) if env is None else env)
    return _validated(located, data, path, str(file), env_issues)


def config_from_dict(data: Mapping[str, Any], *, file: Path) -> IngestConfig:
    """Validate a configuration built in Python (see :mod:`conduit_core.builder`) with the rules of a file's:
    ``file`` names it in messages and the run history, and relative paths are relative to its folder."""
    plain = dict(data)
    return _validated(Located(plain), plain, file.resolve(), str(file), [])


def _validated(located: Located, data: dict[str, Any], path: Path, label: str,
               issues: list[ConfigIssue]) -> IngestConfig:
    out = _Collector(located)
    out.issues.extend(issues)
    for key in data:
        if key not in _TOP_LEVEL:
            out.add(f"unknown top-level key {key!r}{suggest(key, _TOP_LEVEL)}; valid keys: {', '.join(_TOP_LEVEL)}",
                    (key,))
    context = {"base_dir": path.parent}
    settings = out.validate(Settings, data.get("settings") or {}, ("settings",), context) or Settings()
    state = out.validate(StateConfig, data["state"], ("state",), context) if data.get("state") else None
    sources, source_types = _connectors(data.get("sources"), "source", "sources", out, context)
    destinations, dest_types = _connectors(data.get("destinations"), "destination", "destinations", out, context)
    resources = _resources(data.get("resources"), out, context, source_types, dest_types)
    if out.issues:
        found = sorted(out.issues, key=lambda i: (i.line or 0, i.column or 0))
        raise ConfigError("Invalid configuration", issues=found, file=label,
                          hint="fix the entries above; `conduit validate -f FILE` re-checks without running")
    if not Path(settings.state_dir).is_absolute():
        settings = settings.model_copy(update={"state_dir": path.parent / settings.state_dir})
    return IngestConfig(file=path, sources=tuple(sources), destinations=tuple(destinations),
                        resources=tuple(resources), settings=settings, state=state)
