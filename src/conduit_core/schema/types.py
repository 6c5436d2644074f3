"""Type names for ingest.yml, and how two Arrow types relate (for drift and for widening).

``relate(old, new)`` says what loading ``new`` values into an ``old`` column
takes: nothing (``SAME``, or ``FITS`` when every ``new`` value is exactly an
``old`` value), a widening of the column (``WIDER``: int -> bigint, int ->
double, float -> double, date -> timestamp, a larger
decimal), or nothing will do without losing values (``INCOMPATIBLE``). Timestamps of
different units are the same type; with and without a time zone they are not.
"""

from __future__ import annotations

import re
from enum import StrEnum

import pyarrow as pa

_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
_VARCHAR = re.compile(r"^(?:varchar|character varying|char|character)\s*(?:\(\s*\d+\s*\))?$")
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=(.+))?\]$")

NAMES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "bool": pa.bool_(),
    "tinyint": pa.int8(), "int8": pa.int8(),
    "smallint": pa.int16(), "int16": pa.int16(),
    "int": pa.int32(), "integer": pa.int32(), "int32": pa.int32(),
    "bigint": pa.int64(), "long": pa.int64(), "int64": pa.int64(),
    "float": pa.float32(), "real": pa.float32(), "float32": pa.float32(),
    "double": pa.float64(), "double precision": pa.float64(), "float64": pa.float64(),
    "string": pa.string(), "text": pa.string(), "varchar": pa.string(), "json": pa.string(), "uuid": pa.string(),
    "binary": pa.binary(), "bytes": pa.binary(), "blob": pa.binary(), "bytea": pa.binary(),
    "date": pa.date32(), "date32[day]": pa.date32(),
    "timestamp": pa.timestamp("us"), "datetime": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", "UTC"), "timestamp with time zone": pa.timestamp("us", "UTC"),
    "time": pa.time64("us"),
}


def parse_type(text: str) -> pa.DataType:
    """An Arrow type for a name in ingest.yml (``bigint``, ``decimal(12,2)``, ``timestamp[ms]`` ...)."""
    name = " ".join(text.strip().lower().split())
    if name in NAMES:
        return NAMES[name]
    if match := _DECIMAL.match(name):
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            msg = f"decimal precision must be 1..38 and scale <= precision (got {text!r})"
            raise ValueError(msg)
        return pa.decimal128(precision, scale)
    if _VARCHAR.match(name):
        return pa.string()
    if match := _TIMESTAMP.match(name):
        return pa.timestamp(match.group(1), match.group(2))
    valid = ", ".join(sorted({*NAMES, "decimal(p,s)", "varchar(n)", "timestamp[unit, tz=...]"}))
    msg = f"unknown type {text!r}; valid types: {valid}"
    raise ValueError(msg)


def type_name(data_type: pa.DataType) -> str:
    """The name ingest.yml uses for ``data_type`` (``parse_type`` reads it back)."""
    for name in ("boolean", "tinyint", "smallint", "integer", "bigint", "float", "double", "string", "binary",
                 "date", "timestamp", "timestamptz", "time"):
        if NAMES[name].equals(data_type):
            return name
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return "string"
    return str(data_type)


class Relation(StrEnum):
    SAME = "same"
    FITS = "fits"
    WIDER = "wider"
    INCOMPATIBLE = "incompatible"


_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4,
             pa.uint8(): 2, pa.uint16(): 3, pa.uint32(): 4}


def _int_rank(t: pa.DataType) -> int | None:
    for key, rank in _INT_RANK.items():
        if key.equals(t):
            return rank
    return None


def _strings(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def relate(old: pa.DataType, new: pa.DataType) -> Relation:
    """What it takes to load values of type ``new`` into a column of type ``old``."""
    if old.equals(new) or (_strings(old) and _strings(new)) or pa.types.is_null(new):
        return Relation.SAME
    old_int, new_int = _int_rank(old), _int_rank(new)
    if old_int is not None and new_int is not None:
        return Relation.FITS if new_int <= old_int else Relation.WIDER
    if pa.types.is_floating(old) and (new_int is not None or pa.types.is_floating(new)):
        return Relation.FITS if new_int is not None or new.bit_width <= old.bit_width else Relation.WIDER
    if pa.types.is_floating(new) and old_int is not None:
        return Relation.WIDER  # int column -> double
    if pa.types.is_decimal(old) and pa.types.is_decimal(new):
        fits = new.scale <= old.scale and new.precision - new.scale <= old.precision - old.scale
        return Relation.FITS if fits else Relation.WIDER
    if pa.types.is_timestamp(old) and pa.types.is_timestamp(new):
        # Units are a representation, not a different type: databases keep one (microseconds), a CSV
        # reads whole seconds as timestamp[s], Parquet stores those as milliseconds.
        return Relation.SAME if (old.tz is None) == (new.tz is None) else Relation.INCOMPATIBLE
    if pa.types.is_timestamp(old) and pa.types.is_date(new):
        return Relation.FITS
    if pa.types.is_date(old) and pa.types.is_timestamp(new):
        return Relation.WIDER  # date column -> timestamp
    return Relation.INCOMPATIBLE


def widened(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The type a column of type ``old`` becomes to take ``new`` values, or None if no lossless one exists."""
    relation = relate(old, new)
    if relation in (Relation.SAME, Relation.FITS):
        return old
    if relation is Relation.INCOMPATIBLE:
        return None
    if pa.types.is_decimal(old) and pa.types.is_decimal(new):
        scale = max(old.scale, new.scale)
        digits = max(old.precision - old.scale, new.precision - new.scale)
        return pa.decimal128(min(digits + scale, 38), scale) if digits + scale <= 38 else None
    if pa.types.is_date(old):
        return new
    return new


def unify(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """One type for values of both types, for inference across batches: int -> bigint -> double ->
    string (decimals widen; anything else that does not fit becomes string)."""
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    for first, second in ((a, b), (b, a)):
        if relate(first, second) in (Relation.SAME, Relation.FITS):
            return first
    for first, second in ((a, b), (b, a)):
        if (wider := widened(first, second)) is not None:
            return wider
    if (pa.types.is_decimal(a) and pa.types.is_floating(b)) or (pa.types.is_floating(a) and pa.types.is_decimal(b)):
        return pa.float64()
    if (pa.types.is_decimal(a) and _int_rank(b) is not None) or (pa.types.is_decimal(b) and _int_rank(a) is not None):
        decimal = a if pa.types.is_decimal(a) else b
        return pa.decimal128(min(max(decimal.precision, 19 + decimal.scale), 38), decimal.scale)
    return pa.string()
