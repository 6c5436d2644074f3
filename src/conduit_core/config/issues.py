"""Turn pydantic validation errors into located, readable config issues."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from conduit_core.config.yaml_source import Located, PathKey, format_path
from conduit_core.errors import ConfigIssue

_SECRET_WORDS = ("password", "secret", "token", "key", "credential", "dsn", "private")


def looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and lowered not in {"primary_key", "keys"}


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc``, for unknown-key suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            break
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    fields = getattr(current, "model_fields", {})
    return [field.alias or name for name, field in fields.items() if name != "options"]


def _message(err: ErrorDetails, model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        allowed = _fields(model, loc[:-1])
        hint = suggest(key, allowed)
        listing = f"; valid keys: {', '.join(allowed)}" if allowed and not hint else ""
        return f"unknown key {key!r}{hint}{listing}"
    if kind == "missing":
        return f"required key {key!r} is missing"
    msg = err["msg"]
    if kind in {"enum", "literal_error"} and isinstance(err.get("input"), str):
        msg = f"{msg}{suggest(err['input'], _expected(err))}"
    if not any(looks_secret(str(p)) for p in loc) and "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    return msg


def _expected(err: ErrorDetails) -> list[str]:
    ctx = err.get("ctx") or {}
    expected = str(ctx.get("expected", ""))
    return [part.strip(" '\"") for part in expected.replace(" or ", ",").split(",") if part.strip()]


def validation_issues(exc: ValidationError, located: Located, prefix: PathKey,
                      model: type[BaseModel]) -> list[ConfigIssue]:
    """One :class:`ConfigIssue` per pydantic error, located at its YAML path."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        path = (*prefix, *loc)
        line, column = located.position(path)
        issues.append(ConfigIssue(_message(err, model), format_path(path), line, column))
    return issues
