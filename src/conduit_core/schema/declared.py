"""Apply a declared ``schema:`` to batches: declared types take precedence over inferred ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.config.models import DeclaredColumn
from conduit_core.errors import DataError
from conduit_core.schema.exact import Convert, bad_positions
from conduit_core.schema.types import parse_type


def not_null(field: pa.Field) -> bool:
    """Whether a created column should be NOT NULL: only when ``schema:`` declared it ``nullable: false``
    (most sources call every column nullable, so their own flag says nothing)."""
    return not field.nullable and bool((field.metadata or {}).get(b"conduit.declared"))


def _keep(rows: int, dropped: list[int]) -> pa.BooleanArray:
    """A mask of ``rows`` rows without the ``dropped`` positions (built in numpy, not per row)."""
    mask = np.ones(rows, dtype=bool)
    mask[dropped] = False
    return pa.array(mask)


def _localize(array: pa.Array, target: pa.DataType, timezone: str | None) -> pa.Array:
    """A date or timestamp as ``target``; naive values are taken to be in ``timezone`` (when given)."""
    if pa.types.is_timestamp(target) and target.tz and timezone and not (
            pa.types.is_timestamp(array.type) and array.type.tz):
        naive = array.cast(pa.timestamp(target.unit))
        return pc.assume_timezone(naive, timezone).cast(target)
    return pc.cast(array, target)


def _exact_decimal(array: pa.Array, target: pa.DataType) -> pa.Array:
    """A float becomes the decimal it is written as (its shortest text, 84416.54), not its binary expansion
    (84416.539999..., which Arrow's cast would cut at the scale, or refuse); a value that has more digits
    than the decimal holds is rejected instead of rounded."""
    if pa.types.is_floating(array.type):
        fast = _scaled_floats(array, target)
        if fast is not None:
            return fast
        # The shortest text reads back as the same float, and Arrow casts text to a decimal exactly or not at
        # all (12.345 does not fit decimal(12,2); NaN is no decimal). Decimal -> float casts are not correctly
        # rounded in Arrow (8441654 / 100 gives 84416.54000000001), so no comparison through floats.
        return pc.cast(pc.cast(array, pa.string()), target)
    return pc.cast(array, target)


# Below 2**52 the doubles are closer together than any two decimals of the scale that pass the check below.
_EXACT_UNSCALED = 2**52


def _scaled_floats(array: pa.Array, target: pa.DataType) -> pa.Array | None:
    """The decimals of a float64 column without going through text (twice as fast), or None to take the text
    path. n = round(x * 10**scale) is taken when n / 10**scale, a correctly rounded division of two exact
    doubles, is x again: then n * 10**-scale is the only number of that scale that reads as x, which is the
    number x's shortest text shows."""
    if not pa.types.is_float64(array.type) or not 0 <= target.scale <= 15:
        return None
    factor = float(10**target.scale)
    unscaled = pc.round(pc.multiply(array, factor))
    if not pc.all(pc.equal(pc.divide(unscaled, factor), array)).as_py():  # NaN never equals itself
        return None
    largest = pc.max(pc.abs(unscaled)).as_py()
    if largest is not None and not largest < min(_EXACT_UNSCALED, 10**target.precision):  # infinity too
        return None
    low = np.asarray(pc.fill_null(pc.cast(unscaled, pa.int64()), 0))
    # decimal128 stores the unscaled value as a little-endian 128-bit two's-complement integer.
    words = np.empty((len(low), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = low, low >> 63
    validity = pc.is_valid(array).buffers()[1] if array.null_count else None  # a bitmap from offset 0
    return pa.Array.from_buffers(target, len(array), [validity, pa.py_buffer(words)], array.null_count)


def _check_calendar(text: pa.Array, parsed: pa.Array, fmt: str) -> None:
    """Arrow's strptime rolls impossible dates over (31/02 becomes 02/03); a value that does not format back
    to its own text is checked strictly by Python, and raises if it is not a real date."""
    back = pc.strftime(parsed, format=fmt)
    differs = pc.fill_null(pc.not_equal(back, text), False)
    if not pc.any(differs).as_py():
        return
    for value in text.filter(differs).to_pylist():  # only the values that did not round-trip (zero padding...)
        try:
            datetime.strptime(value, fmt)
        except ValueError as exc:
            msg = f"{value!r} is not a valid date/time for format {fmt!r}: {exc}"
            raise pa.ArrowInvalid(msg) from None


class DeclaredSchema:
    def __init__(self, columns: Mapping[str, DeclaredColumn], *, strict: bool = False) -> None:
        self.columns = dict(columns)
        self.types = {name: parse_type(c.type) for name, c in self.columns.items()}
        self.strict = strict

    def arrow_field(self, name: str) -> pa.Field:
        return pa.field(name, self.types[name], self.columns[name].nullable, metadata={b"conduit.declared": b"1"})

    def coerce(self, batch: Batch, *, strict: bool | None = None) -> tuple[Batch, dict[int, dict[str, Any]]]:
        """``batch`` cast to the declared types, without the rows whose values do not convert; those rows
        come back as {row index in ``batch``: reason}. With ``strict`` the first one is an error instead."""
        strict = self.strict if strict is None else strict
        data = batch.data
        missing = [n for n in self.columns if n not in data.schema.names]
        if missing:
            msg = f"declared column(s) {missing} are not in the data; columns: {data.schema.names}"
            raise DataError(msg, file=batch.source_file, hint="fix `schema:` on the resource")
        rejects: dict[int, dict[str, Any]] = {}
        fields, arrays = [], []
        for field, column in zip(data.schema, data.columns, strict=True):
            array = column
            if field.name not in self.columns:
                fields.append(field)
                arrays.append(array)
                continue
            declared, target = self.columns[field.name], self.types[field.name]
            convert = self._converter(target, declared)
            bad = bad_positions(array, convert) if len(array) else []
            if bad and strict:
                value = array[bad[0]].as_py()
                msg = f"value {value!r} cannot be converted to the declared type {declared.type}"
                raise DataError(msg, file=batch.source_file, column=field.name, row=batch.first_row + bad[0],
                                hint="fix the data, or the declared type/format in `schema:`")
            for position in bad:
                rejects.setdefault(position, {
                    "error_type": "coercion", "check": f"cast to {declared.type}", "column": field.name,
                    "value": array[position].as_py(),
                    "message": f"cannot be converted to {declared.type}"
                               + (f" with format {declared.format!r}" if declared.format else "")})
            if bad:
                array = pc.if_else(_keep(len(array), bad), array, pa.nulls(len(array), array.type))
            converted = convert(array)
            if not declared.nullable and converted.null_count:
                nulls = pc.indices_nonzero(pc.is_null(converted)).to_pylist()
                if strict:
                    msg = f"{converted.null_count} NULL value(s) in a column declared nullable: false"
                    raise DataError(msg, file=batch.source_file, column=field.name, row=batch.first_row + nulls[0],
                                    hint="fix the data, or declare the column nullable")
                for position in nulls:
                    rejects.setdefault(position, {
                        "error_type": "coercion", "check": "nullable: false", "column": field.name, "value": None,
                        "message": "NULL in a column declared nullable: false"})
            fields.append(self.arrow_field(field.name))
            arrays.append(converted)
        out = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
        if rejects:
            out = out.filter(_keep(out.num_rows, list(rejects)))
        return replace(batch, data=out), rejects

    @staticmethod
    def _converter(target: pa.DataType, declared: DeclaredColumn) -> Convert:
        if pa.types.is_boolean(target) and (declared.true_values or declared.false_values):
            true = pa.array(list(declared.true_values or ()), pa.string())
            false = pa.array(list(declared.false_values or ()), pa.string())

            def tokens(array: pa.Array) -> pa.Array:
                text = array.cast(pa.string())
                is_true, is_false = pc.is_in(text, value_set=true), pc.is_in(text, value_set=false)
                unknown = pc.and_(pc.is_valid(text), pc.invert(pc.or_(is_true, is_false)))
                if pc.any(unknown).as_py():
                    msg = "not one of the configured true_values / false_values"
                    raise pa.ArrowInvalid(msg)
                return pc.if_else(pc.is_null(text), pa.nulls(len(text), pa.bool_()), is_true)

            return tokens
        if declared.format and (pa.types.is_timestamp(target) or pa.types.is_date(target)):
            unit = target.unit if pa.types.is_timestamp(target) else "s"
            fmt = declared.format

            def parse(array: pa.Array) -> pa.Array:
                if pa.types.is_temporal(array.type):  # the source already typed it: the format is for text
                    return _localize(array, target, declared.timezone)
                text = array.cast(pa.string())
                parsed = pc.strptime(text, format=fmt, unit=unit, error_is_null=False)
                _check_calendar(text, parsed, fmt)
                if pa.types.is_timestamp(target) and target.tz and parsed.type.tz is None:
                    parsed = pc.assume_timezone(parsed, declared.timezone or target.tz)
                return parsed.cast(target)

            return parse
        if pa.types.is_timestamp(target) and target.tz and declared.timezone:
            return lambda array: _localize(array, target, declared.timezone)
        if pa.types.is_decimal(target):
            return lambda array: _exact_decimal(array, target)
        return lambda array: array if array.type.equals(target) else pc.cast(array, target)
