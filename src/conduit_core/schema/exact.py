"""Numbers from text without losing a digit, vectorised.

pyarrow guesses a CSV column's type from the first block and its converters then change values that
do not fit the guess: ``01234`` becomes 1234, ``99999999999999999999`` becomes ``1e20`` and
``0.12345678901234567890`` loses its last digits. Columns that pyarrow would make numbers are read
as text instead; :func:`decide` picks a type that holds every value of the first block exactly
(int64, float64, decimal128(38, s), or text), and :func:`convert` converts every later block to it,
raising :class:`Inexact` for the first value that would change.

The checks read the first bytes and lengths of the values straight from the Arrow buffers, so a
well-behaved column costs a cast and a few numpy operations; the regular expressions run only on
the few values that need a closer look (more than 15 characters, a leading sign or zero, a result
of zero or infinity).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: A float64 holds any decimal number of up to 15 significant digits exactly (DBL_DIG).
_DOUBLE_DIGITS = 15
_DECIMAL_DIGITS = 38
_ZERO, _PLUS, _MINUS = ord("0"), ord("+"), ord("-")

Convert = Callable[[pa.Array], pa.Array]


class Inexact(Exception):  # noqa: N818 - a condition, reported as a DataError by the caller
    """The value at ``index`` cannot be converted to ``target`` without changing it."""

    def __init__(self, index: int, value: str | None, target: pa.DataType, why: str) -> None:
        super().__init__(why)
        self.index, self.value, self.target, self.why = index, value, target, why


def bad_positions(array: pa.Array, convert: Convert) -> list[int]:
    """Positions of the values ``convert`` rejects, found by halving: O(k log n) vectorised conversions for
    k bad values, and no per-row work when all is well."""
    try:
        convert(array)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if len(array) == 1:
            return [0]
    middle = len(array) // 2
    return bad_positions(array.slice(0, middle), convert) + [
        middle + p for p in bad_positions(array.slice(middle), convert)]


def is_number(data_type: pa.DataType) -> bool:
    """The types pyarrow infers for numbers in text, and the exact ones :func:`decide` may choose."""
    return bool(pa.types.is_int64(data_type) or pa.types.is_float64(data_type) or pa.types.is_decimal(data_type))


def _heads(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first three bytes of every value (0 past its end) and its length in bytes, from the buffers."""
    if not pa.types.is_string(text.type):
        text = text.cast(pa.string())
    count = len(text)
    if count == 0:
        empty = np.zeros(0, dtype=np.uint8)
        return empty, empty, empty, np.zeros(0, dtype=np.int32)
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset:text.offset + count + 1]
    starts, lengths = offsets[:-1], np.diff(offsets)
    if text.null_count:
        lengths = np.where(np.asarray(pc.is_valid(text)), lengths, 0)
    if data_buffer is None or data_buffer.size == 0:
        zero = np.zeros(count, dtype=np.uint8)
        return zero, zero, zero, lengths
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    last = data.size - 1
    heads = [np.where(lengths > k, data[np.minimum(starts + k, last)], 0) for k in range(3)]
    return heads[0], heads[1], heads[2], lengths


_SPACE = (ord(" "), ord("\t"))


Heads = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _trimmed(text: pa.Array) -> tuple[pa.Array, Heads]:
    """``text`` without the spaces around values (pyarrow reads `` 12`` as 12, so they are not part of a
    number; checked on the first and last bytes, trimmed only where some value has them), and its
    :func:`_heads`, which every later check reads (computed once per column and batch)."""
    if not pa.types.is_string(text.type):
        text = text.cast(pa.string())
    heads = _heads(text)
    if len(text) == 0 or text.null_count == len(text):
        return text, heads
    first, _, _, lengths = heads
    _, offsets_buffer, data_buffer = text.buffers()
    ends = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset + 1:text.offset + len(text) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None and data_buffer.size else None
    last = np.where(lengths > 0, data[np.maximum(ends - 1, 0)], 0) if data is not None else first
    if np.isin(first, _SPACE).any() or np.isin(last, _SPACE).any():
        text = pc.utf8_trim_whitespace(text)
        return text, _heads(text)
    return text, heads


def _digit(byte: np.ndarray) -> np.ndarray:
    return (byte >= _ZERO) & (byte <= _ZERO + 9)


def _leading_zeros(heads: Heads) -> np.ndarray:
    """Values whose digits start with a zero that a number would drop (``007``, ``-01.5``; not ``0`` or
    ``0.5``), from their :func:`_heads`."""
    first, second, third, _ = heads
    signed = (first == _PLUS) | (first == _MINUS)
    zeros: np.ndarray = ((first == _ZERO) & _digit(second)) | (signed & (second == _ZERO) & _digit(third))
    return zeros


def _significant_digits(text: pa.Array) -> pa.Array:
    """Digits of the mantissa after leading zeros (``-0.00120e5`` has 3): vectorised regular expressions,
    for the few values long enough to need it."""
    mantissa = pc.replace_substring_regex(text, pattern=r"[eE].*$", replacement="")
    # Zeros that end a fraction say nothing about the value (1.5000000000000000 is 1.5).
    mantissa = pc.replace_substring_regex(mantissa, pattern=r"(\.[0-9]*?)0+$", replacement=r"\1")
    digits = pc.replace_substring_regex(mantissa, pattern=r"[^0-9]", replacement="")
    return pc.utf8_length(pc.utf8_ltrim(digits, characters="0"))


def _inexact_doubles(text: pa.Array, values: pa.Array, heads: Heads) -> np.ndarray:
    """Values whose float64 is not the number written: more than 15 significant digits, or an exponent
    beyond the double's range (read as infinity or zero)."""
    _, _, _, lengths = heads
    bad = np.zeros(len(text), dtype=bool)
    long = lengths > _DOUBLE_DIGITS
    if long.any():
        index = np.flatnonzero(long)
        digits = np.asarray(pc.fill_null(_significant_digits(text.take(pa.array(index))), 0))
        bad[index[digits > _DOUBLE_DIGITS]] = True
    numbers = np.asarray(values.fill_null(1.0))
    edge = np.flatnonzero((numbers == 0) | ~np.isfinite(numbers))
    if edge.size:
        written = text.take(pa.array(edge))
        special = np.asarray(pc.fill_null(pc.match_substring_regex(
            written, pattern=r"^[+-]?(?:inf|infinity|nan)$", ignore_case=True), False))
        nonzero = np.asarray(pc.fill_null(pc.match_substring_regex(
            pc.replace_substring_regex(written, pattern=r"[eE].*$", replacement=""), pattern="[1-9]"), False))
        value = numbers[edge]
        bad[edge[(~np.isfinite(value) & ~special) | ((value == 0) & nonzero)]] = True
    return bad


@dataclass(frozen=True)
class NumberText:
    """What the numbers of a column look like, for choosing their type: merged over blocks, so a reader
    can decide from one block (CSV) or from the whole input (JSON)."""

    values: int = 0
    leading_zero: bool = False
    #: Every value is a whole number that fits int64.
    int64: bool = True
    #: Every value reads as the same number in a float64.
    double: bool = True
    #: Every value is in positional notation (no exponent, no inf/nan), with at most these digits.
    plain: bool = True
    whole_digits: int = 0
    scale: int = 0

    @classmethod
    def of(cls, text: pa.Array) -> NumberText:
        text, heads = _trimmed(text)
        valid = len(text) - text.null_count
        if not valid:
            return cls()
        if _leading_zeros(heads).any():
            return cls(valid, leading_zero=True)
        try:
            double = not _inexact_doubles(text, pc.cast(text, pa.float64()), heads).any()
        except pa.ArrowInvalid:
            double = False
        # Positional notation: no exponent, inf or nan (substring searches: a failing cast or a regular
        # expression per value costs several times more).
        plain = not any(pc.any(pc.match_substring(text, pattern=letter)).as_py() for letter in "eEnN")
        if not plain:
            return cls(valid, int64=False, double=double, plain=False)
        lengths = pc.binary_length(text)
        point = pc.find_substring(text, ".")
        fraction = pc.greater_equal(point, 0)
        if not pc.any(fraction).as_py():
            try:
                pc.cast(text, pa.int64())
                # Whole numbers; the sign may count as a digit (only ever a little too wide).
                return cls(valid, double=double, whole_digits=int(pc.max(lengths).as_py() or 0))
            except pa.ArrowInvalid:
                pass  # beyond 64 bits
        signed = pc.or_(pc.starts_with(text, "-"), pc.starts_with(text, "+"))
        whole = pc.subtract(pc.if_else(fraction, point, lengths), pc.cast(signed, pa.int32()))
        scale = pc.if_else(fraction, pc.subtract(pc.subtract(lengths, point), 1), 0)
        return cls(valid, int64=False, double=double, whole_digits=int(pc.max(whole).as_py() or 0),
                   scale=int(pc.max(scale).as_py() or 0))

    def merge(self, other: NumberText) -> NumberText:
        if not self.values or not other.values:
            return other if not self.values else self
        return NumberText(self.values + other.values, self.leading_zero or other.leading_zero,
                          self.int64 and other.int64, self.double and other.double, self.plain and other.plain,
                          max(self.whole_digits, other.whole_digits), max(self.scale, other.scale))

    def type(self, guess: pa.DataType) -> pa.DataType:
        """The first type that holds every value exactly: int64, float64, decimal128(38, s), else text;
        ``guess`` when there is no value to judge by."""
        if not self.values:
            return guess
        if self.leading_zero:
            return pa.string()  # codes such as zip codes and account numbers: text, with their zeros
        if self.int64:
            return pa.int64()
        if self.double:
            return pa.float64()
        if self.plain and self.whole_digits + self.scale <= _DECIMAL_DIGITS:
            return pa.decimal128(_DECIMAL_DIGITS, self.scale)
        return pa.string()


def decide(text: pa.Array, inferred: pa.DataType) -> pa.DataType:
    """The type that holds every value of ``text`` (a block a reader typed ``inferred``) exactly."""
    return NumberText.of(text).type(inferred)


def convert(text: pa.Array, target: pa.DataType) -> pa.Array:
    """``text`` as ``target`` (a type :func:`decide` chose), or :class:`Inexact` for the first value that
    would not come out as written."""
    if pa.types.is_string(target):
        return text
    text, heads = _trimmed(text)
    zeros = _leading_zeros(heads)
    if zeros.any():
        index = int(np.flatnonzero(zeros)[0])
        raise Inexact(index, text[index].as_py(), target, "has a leading zero that a number would drop")
    try:
        values = pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index = bad_positions(text, lambda part: pc.cast(part, target))[0]
        value = text[index].as_py()
        # One value, on the error path: is it a number at all?
        if re.fullmatch(r"[+-]?\d+", str(value)):
            why = "is beyond the range of the type" if pa.types.is_integer(target) else \
                "has more digits than the type holds"
        elif re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", str(value)):
            why = "is not a whole number" if pa.types.is_integer(target) else "has more digits than the type holds"
        else:
            why = "is not a number"
        raise Inexact(index, value, target, why) from None
    if pa.types.is_float64(target):
        inexact = _inexact_doubles(text, values, heads)
        if inexact.any():
            index = int(np.flatnonzero(inexact)[0])
            raise Inexact(index, text[index].as_py(), target,
                          "cannot be held exactly by a float64 (too many digits, or beyond its range)")
    return values


def convert_columns(data: pa.RecordBatch, numbers: dict[str, pa.DataType],
                    fail: Callable[[str, pa.DataType, Inexact], Exception]) -> pa.RecordBatch:
    """``data`` with its ``numbers`` columns (text) converted by :func:`convert`; ``fail(column, type, inexact)``
    makes the error a reader raises for a value that would change."""
    for name, target in numbers.items():
        if pa.types.is_string(target):
            continue
        index = data.schema.get_field_index(name)
        try:
            converted = convert(data.column(index), target)
        except Inexact as exc:
            raise fail(name, target, exc) from None
        data = data.set_column(index, pa.field(name, target), converted)
    return data


_UNITS = {"s": 0, "ms": 1, "us": 2, "ns": 3}


def finer_than(data: pa.RecordBatch, unit: str) -> tuple[str, int, Any] | None:
    """The first value (column, row index, value) of a timestamp or time column that ``unit`` cannot hold
    (nanoseconds in a destination that keeps microseconds), or None. Whole microseconds convert unchanged."""
    for field, column in zip(data.schema, data.columns, strict=True):
        kind = field.type
        if not (pa.types.is_timestamp(kind) or pa.types.is_time(kind) or pa.types.is_duration(kind)):
            continue
        if _UNITS.get(kind.unit, 0) <= _UNITS[unit]:
            continue
        target = (pa.timestamp(unit, kind.tz) if pa.types.is_timestamp(kind) else
                  pa.time64(unit) if pa.types.is_time(kind) else pa.duration(unit))
        back = pc.cast(pc.cast(column, target, safe=False), kind)
        changed = pc.fill_null(pc.not_equal(back, column), False)
        if pc.any(changed).as_py():
            index = int(pc.index(changed, True).as_py())
            return field.name, index, column[index].cast(pa.string()).as_py()  # datetime has no nanoseconds
    return None


def refuse_finer_than(data: pa.RecordBatch, unit: str, first_row: int, kind: str) -> None:
    """Raise a :class:`~conduit_core.errors.DataError` for a value the destination (``kind``), which keeps time
    to ``unit``, would cut (a CSV's nanoseconds into microseconds): it never rounds a value."""
    from conduit_core.errors import DataError

    found = finer_than(data, unit)
    if found is not None:
        column, index, value = found
        msg = (f"value {value} has a precision finer than {kind} keeps ({unit}); it would be cut, and a value is "
               "never changed to fit a type")
        raise DataError(msg, column=column, row=first_row + index,
                        hint="read the column as text to keep it whole (a CSV source: `column_types: {"
                             f"{column}: string}}`), or load it into a destination that keeps nanoseconds (DuckDB, "
                             "Parquet)")
