"""Rows from a Python DB-API cursor as Arrow batches (SQLite, MySQL sources).

The driver hands out Python tuples, so this is the one place where values
pass through Python; everything after it is Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.errors import DataError


def column(name: str, values: Sequence[Any], declared: pa.DataType | None) -> pa.Array:
    """One column: the declared type when given (converting text/ints the driver returned), else inferred."""
    try:
        if declared is None:
            array = pa.array(values)
            # An all-NULL first batch would fix the column to type null.
            return array.cast(pa.string()) if pa.types.is_null(array.type) else array
        try:
            return pa.array(values, declared)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # e.g. SQLite's ISO text for timestamps/decimals, 0/1 for booleans
            return pc.cast(pa.array(values), declared)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
        msg = f"values do not match the column's type {declared}: {exc}"
        raise DataError(msg, column=name, hint="cast the column in the source query") from exc


def rows_to_batch(rows: Sequence[tuple[Any, ...]], names: list[str], declared: Sequence[pa.DataType | None],
                  schema: pa.Schema | None, first_row: int) -> pa.RecordBatch:
    """A batch of ``rows``; later batches are cast to the first batch's ``schema``."""
    columns = list(zip(*rows, strict=True))
    arrays = [column(n, col, typ) for n, col, typ in zip(names, columns, declared, strict=True)]
    data = pa.RecordBatch.from_arrays(arrays, names=names)
    if schema is None or data.schema.equals(schema):
        return data
    try:
        return data.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        msg = f"a later batch does not fit the types of the first ({exc})"
        raise DataError(msg, row=first_row, hint="cast the columns in the source query") from exc
