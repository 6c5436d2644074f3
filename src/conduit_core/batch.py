"""The unit that flows through the engine, and adapters for dict-based connectors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pyarrow as pa

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


def _widen_nulls(schema: pa.Schema) -> pa.Schema:
    # A column that is entirely null in the first batch has Arrow type `null`;
    # later batches would not fit it, so it is carried as a nullable string.
    return pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])


def records_to_batch(records: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None,
                     *, first_row: int = 1) -> pa.RecordBatch:
    """Convert dict records to a record batch with ``schema`` (inferred when ``None``).

    Keys that are not in ``schema`` are an error rather than being dropped, so a
    simple connector can never lose a field silently.
    """
    if schema is None:
        # from_pylist takes its columns from the first record; a key that only
        # later records carry would be dropped, so every record gets every key.
        names = list(dict.fromkeys(key for record in records for key in record))
        inferred = pa.RecordBatch.from_pylist([{n: r.get(n) for n in names} for r in records])
        schema = _widen_nulls(inferred.schema)
        if schema.equals(inferred.schema):
            return inferred
    keys: set[str] = set().union(*records) if records else set()
    unknown = keys.difference(schema.names)
    if unknown:
        name = sorted(unknown)[0]
        row = next(i for i, r in enumerate(records) if name in r) + first_row
        msg = f"field {name!r} is not in the schema established by earlier records ({', '.join(schema.names)})"
        raise DataError(msg, row=row, column=name,
                        hint="emit every field in every record (use None for missing values)")
    try:
        return pa.RecordBatch.from_pylist(list(records), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = f"records do not fit the schema established by earlier records: {exc}"
        raise DataError(msg, row=first_row) from exc


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
