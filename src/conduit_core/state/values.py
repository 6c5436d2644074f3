"""Typed values in JSON state: a high-water mark or a keyset position keeps its Arrow type.

A value is stored as its text (Arrow's own cast to string) plus its type, so
``10`` stays an integer and compares greater than ``9``, and a timestamp keeps
its unit and time zone across runs and machines.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pyarrow as pa

from conduit_core.errors import ConfigError


def _type_text(data_type: pa.DataType) -> str:
    return base64.b64encode(pa.schema([pa.field("v", data_type)]).serialize().to_pybytes()).decode("ascii")


def _type_from(text: str) -> pa.DataType:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text))).field("v").type


def encode_value(scalar: pa.Scalar) -> dict[str, str]:
    """``{"type": ..., "value": ..., "display": ...}`` for a non-null scalar."""
    text = scalar.as_py() if pa.types.is_string(scalar.type) else scalar.cast(pa.string()).as_py()
    return {"value": str(text), "arrow_type": str(scalar.type), "type": _type_text(scalar.type)}


def decode_value(data: dict[str, Any]) -> pa.Scalar:
    return pa.scalar(str(data["value"]), pa.string()).cast(_type_from(str(data["type"])))


def cast_value(value: pa.Scalar, data_type: pa.DataType, what: str,
               hint: str = "fix the value, or reset the state with `conduit state reset RESOURCE`") -> pa.Scalar:
    """``value`` as ``data_type`` (via its text, so '2024-01-01' becomes a date); a clear error if it cannot be."""
    if value.type.equals(data_type):
        return value
    # Text, and numbers bound for a decimal, go through their text: Arrow casts an int64 to a decimal only when
    # the decimal could hold every int64 (precision 19 plus the scale), whatever the value.
    via_text = pa.types.is_string(value.type) or (
        pa.types.is_decimal(data_type) and (pa.types.is_integer(value.type) or pa.types.is_floating(value.type)))
    try:
        return pa.scalar(str(value.as_py()), pa.string()).cast(data_type) if via_text else value.cast(data_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = f"{what} {value.as_py()!r} ({value.type}) cannot be compared with a column of type {data_type}: {exc}"
        raise ConfigError(msg, hint=hint) from None


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' (also spelled out: '2 hours')."""
    match = _DURATION.match(text)
    if not match:
        msg = f"not a duration: {text!r}; use a number with a unit, e.g. '90s', '15m', '2h' or '1d'"
        raise ValueError(msg)
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0].lower()])


def subtract(value: pa.Scalar, lookback: int | float | str) -> pa.Scalar:
    """``value`` minus ``lookback`` (a number for numeric columns, a duration for dates and timestamps)."""
    t = value.type
    if pa.types.is_temporal(t):
        if not isinstance(lookback, str):
            lookback = f"{lookback}s"
        return pa.scalar(value.as_py() - parse_duration(lookback), t)
    if isinstance(lookback, str):
        msg = f"lookback {lookback!r} is a duration, but the incremental column is {t}; use a number"
        raise ConfigError(msg)
    python = value.as_py()
    return pa.scalar(type(python)(python - lookback) if not pa.types.is_decimal(t) else python - type(python)(
        str(lookback)), t)
