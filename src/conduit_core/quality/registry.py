"""Check names: the built-ins, and custom validators registered in code or by entry point.

A custom validator is a callable registered by name::

    from conduit_core.quality import validator

    @validator("valid_sku")                      # per value: value -> bool, or (bool, reason)
    def valid_sku(value, **params):              # (None is never passed)
        return value.startswith("SKU-")

    @validator("positive", vectorized=True)      # per column: pa.Array -> boolean mask (True = valid)
    def positive(values, **params):
        return pyarrow.compute.greater(values, 0)

Packages register them under the entry-point group ``conduit.validators``
(``valid_sku = "my_pkg.checks:valid_sku"``); a function without the decorator
is per value unless it has an attribute ``vectorized = True``. The seed's spelling,
``QualityCheckRegistry.register_custom("valid_sku", fn)``, registers the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from conduit_core.errors import DataError

if TYPE_CHECKING:
    from conduit_core.config.models import QualityCheckConfig

BUILTINS = ("not_null", "unique", "regex", "range", "enum", "expression")
GROUP = "conduit.validators"


@dataclass(frozen=True)
class Validator:
    name: str
    function: Callable[..., Any]
    vectorized: bool
    origin: str = "code"


_REGISTERED: dict[str, Validator] = {}


def validator(name: str, *, vectorized: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a custom check under ``name`` (see the module docstring for the two signatures)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTERED[name] = Validator(name, function, vectorized)
        function.vectorized = vectorized  # type: ignore[attr-defined]
        return function

    return register


class QualityCheckRegistry:
    """The seed contract's registry: ``register_custom(name, fn)`` is :func:`validator` by another name."""

    @staticmethod
    def register_custom(name: str, function: Callable[..., Any], *, vectorized: bool = False) -> None:
        validator(name, vectorized=vectorized)(function)


def verdict(outcome: Any, name: str) -> tuple[bool, str | None]:
    """A per-value validator's answer as (ok, reason): it may return a bool or ``(bool, reason)``.

    A tuple is never read as a truth value: ``(False, "bad")`` is truthy, and taking it for a pass
    would let every row through.
    """
    if isinstance(outcome, tuple):
        if len(outcome) != 2:
            msg = f"custom check {name!r} returned a tuple of {len(outcome)}; return a bool or (ok, reason)"
            raise DataError(msg)
        ok, reason = outcome
        return bool(ok), (str(reason) if reason is not None and not ok else None)
    return bool(outcome), None


def custom(name: str) -> Validator | None:
    """The custom validator called ``name``: registered in code, or loaded from an entry point."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    for point in entry_points(group=GROUP):
        if point.name == name:
            function = point.load()
            found = Validator(name, function, bool(getattr(function, "vectorized", False)),
                              f"{point.value} ({point.dist.name if point.dist else 'entry point'})")
            _REGISTERED[name] = found
            return found
    return None


def known() -> list[str]:
    return [*BUILTINS, *sorted({*_REGISTERED, *(p.name for p in entry_points(group=GROUP))})]


def validate_check(check: QualityCheckConfig) -> None:
    """Raise ValueError (reported at the check's YAML path) for an unknown name or missing parameters."""
    if check.check not in BUILTINS:
        try:
            found = custom(check.check)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported at the check
            msg = f"validator {check.check!r} failed to load: {type(exc).__name__}: {exc}"
            raise ValueError(msg) from None
        if found is None:
            from conduit_core.config.issues import suggest

            names = known()
            msg = f"unknown check {check.check!r}{suggest(check.check, names)}; known checks: {', '.join(names)}"
            raise ValueError(msg)
    needs: dict[str, tuple[str, bool]] = {
        "regex": ("pattern", check.pattern is not None), "enum": ("values", check.values is not None),
        "expression": ("sql", check.sql is not None),
        "range": ("min_value or max_value", check.min_value is not None or check.max_value is not None),
    }
    if check.check in needs and not needs[check.check][1]:
        msg = f"check {check.check!r} needs {needs[check.check][0]}"
        raise ValueError(msg)
    if check.check != "expression" and not check.column:
        msg = f"check {check.check!r} needs column"
        raise ValueError(msg)
    if check.pattern is not None:
        try:
            re.compile(check.pattern)
        except re.error as exc:
            msg = f"pattern {check.pattern!r} is not a valid regular expression: {exc}"
            raise ValueError(msg) from None
