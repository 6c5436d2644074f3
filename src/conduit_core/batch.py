"""The unit that flows through the engine, and adapters for dict-based connectors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.errors import DataError

#: Where to resume reading after a batch; JSON-serialisable, owned by the source.
Position = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """A record batch plus where it came from and where to resume after it."""

    data: pa.RecordBatch
    position: Position | None = None
    source_file: str | None = None
    #: 1-based number of the first row of ``data`` within ``source_file`` (or the stream).
    first_row: int = 1
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return int(self.data.num_rows)

    @property
    def schema(self) -> pa.Schema:
        return self.data.schema

    def to_records(self) -> list[dict[str, Any]]:
        """Python dicts, for connectors that implement the simple dict contract."""
        return list(self.data.to_pylist())


def _column(name: str, values: list[Any], first_row: int) -> pa.Array:
    """One column of dict records, typed from its own values without changing one: integers beyond 64 bits
    become decimal(38, 0) (text beyond that), integers a float64 would round keep a float column as text."""
    try:
        array = pa.array(values, from_pandas=False)
    except OverflowError:
        ints = [v for v in values if v is not None]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            digits = max(len(str(abs(v))) for v in ints)
            if digits <= 38:
                return pa.array([None if v is None else Decimal(v) for v in values], pa.decimal128(38, 0))
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None):
            # Integers a float64 would round, beside floats: the numbers as written, as text.
            return pa.array([None if v is None else repr(v) for v in values], pa.string())
        row = first_row + next((i for i, v in enumerate(values) if v is not None), 0)
        msg = f"the values of field {name!r} are of different kinds in one batch ({exc})"
        raise DataError(msg, row=row, column=name,
                        hint="emit one type per field (e.g. always a number, or always a string)") from None
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array


def _fits(array: pa.Array, target: pa.DataType) -> pa.Array | None:
    """``array`` as ``target`` when every value stays the same (numbers to numbers, checked by Arrow's safe
    cast: 2.0 fits an int64 column, 2.5 does not; NULLs fit anything); else None."""
    if array.type.equals(target):
        return array
    if pa.types.is_null(array.type) or array.null_count == len(array):
        return pa.nulls(len(array), target)
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    both_numbers = any(f(array.type) for f in numeric) and any(f(target) for f in numeric)
    both_times = (pa.types.is_timestamp(array.type) and pa.types.is_timestamp(target)
                  and (array.type.tz is None) == (target.tz is None))  # naive and zoned are different instants
    if not (both_numbers or both_times):
        return None
    try:
        fitted = array.cast(target, safe=True)
        # Arrow's safe cast still rounds a float to a decimal's scale and a decimal to a float: the values
        # must come back unchanged.
        back = fitted.cast(array.type, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    same = pc.fill_null(pc.equal(back, array), True)
    return fitted if pc.all(same).as_py() else None


def records_to_batch(records: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None,
                     *, first_row: int = 1) -> pa.RecordBatch:
    """Convert dict records to a record batch with ``schema`` (inferred when ``None``).

    Every column is typed from its own values first, so nothing is converted on the way in. A later
    batch must fit the ``schema`` of the first without a value changing: a key that is not in it, or a
    value it cannot hold exactly (2.5 in an int64 column), is an error rather than a dropped field or a
    truncated number.
    """
    names = list(dict.fromkeys(key for record in records for key in record))
    if schema is not None:
        unknown = [n for n in names if n not in schema.names]
        if unknown:
            name = unknown[0]
            row = next(i for i, r in enumerate(records) if name in r) + first_row
            msg = f"field {name!r} is not in the schema established by earlier records ({', '.join(schema.names)})"
            raise DataError(msg, row=row, column=name,
                            hint="emit every field in every record (use None for missing values)")
    columns = {n: _column(n, [r.get(n) for r in records], first_row) for n in names}
    if schema is None:
        return pa.RecordBatch.from_arrays(list(columns.values()), names=names) if names else \
            pa.RecordBatch.from_pylist([])
    arrays = []
    for wanted in schema:
        array = columns.get(wanted.name, pa.nulls(len(records), wanted.type))
        fitted = _fits(array, wanted.type)
        if fitted is None:
            bad = _first_change(array, wanted.type)
            value = array[bad].as_py()
            msg = (f"field {wanted.name!r} is {value!r} ({array.type}), which earlier records made {wanted.type}; "
                   "a value is never rounded or converted to fit")
            raise DataError(msg, row=first_row + bad, column=wanted.name,
                            hint="emit one type per field in every record (e.g. 2.0 rather than 2 for a float "
                                 "field), or use a larger batch_size so the first batch shows the wider values")
        arrays.append(fitted)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _first_change(array: pa.Array, target: pa.DataType) -> int:
    """The first value of ``array`` that ``target`` cannot hold (error path: one value at a time)."""
    for index in range(len(array)):
        if _fits(array.slice(index, 1), target) is None:
            return index
    return 0


def group_records(records: Iterable[Mapping[str, Any]], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Group a record stream into record batches with one consistent schema."""
    iterator = iter(records)
    schema: pa.Schema | None = None
    row = 1
    while chunk := list(islice(iterator, batch_size)):
        data = records_to_batch(chunk, schema, first_row=row)
        schema = data.schema
        row += len(chunk)
        yield data


def iter_batches(reader: pa.RecordBatchReader,
                 translate: Callable[[Exception], BaseException] | None = None,
                 errors: tuple[type[Exception], ...] = (Exception,)) -> Iterator[pa.RecordBatch]:
    """The batches of ``reader``, pulled one at a time; ``translate`` turns a reader error
    (one of ``errors``) into the exception to raise instead."""
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except errors as exc:
            if translate is None:
                raise
            raise translate(exc) from None


def slices(data: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    """``data`` in zero-copy slices of at most ``size`` rows (readers may return larger batches)."""
    if data.num_rows <= size:
        yield data
        return
    for offset in range(0, data.num_rows, size):
        yield data.slice(offset, size)
