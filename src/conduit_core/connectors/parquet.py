"""Parquet source (read by row group) and destination (written in row groups)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from conduit_core.batch import Batch
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import (
    BaseSource,
    ConnectorOptions,
    ReadRequest,
)
from conduit_core.connectors.file_destination import FileDestination
from conduit_core.connectors.files import (
    Combine,
    FileMarks,
    Listing,
    align,
    expand,
    resume_files,
    schema_difference,
    skip_rows,
    union_schema,
)
from conduit_core.errors import DataError
from conduit_core.schema.model import TableSchema
from conduit_core.schema.types import Relation, relate


class ParquetSourceOptions(ConnectorOptions):
    path: ConfigPath = Field(description="file or glob")
    combine: Combine = Field(default="concat", description="for a glob: concat (same schema), union_by_name, "
                                                           "or validate_schema (checked before reading)")


class ParquetSource(BaseSource):
    """Parquet files, streamed one row group at a time."""

    Options = ParquetSourceOptions
    options: ParquetSourceOptions
    rereadable = True

    def test_connection(self) -> bool:
        expand(self.options.path)
        return True

    def estimate_total_records(self) -> int | None:
        return sum(int(pq.ParquetFile(p).metadata.num_rows) for p in expand(self.options.path))

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        files = expand(self.options.path)
        union = self._combined(files) if len(files) > 1 else None
        # Parquet files are rewritten whole, never edited in place: any change to the checkpoint's file refuses.
        listing = Listing(files)
        for path, skip, _ in resume_files(files, request.resume_position, strict=True):
            for batch in self._read_file(path, request, skip, listing.marks(path)):
                yield batch if union is None else replace(batch, data=align(batch.data, union))

    def _combined(self, files: list[Path]) -> pa.Schema | None:
        """Per ``combine``, from the files' footers before a row is read: the schema every batch is aligned to
        (union_by_name), or a check that every file has the first one's schema (validate_schema)."""
        if self.options.combine == "concat":
            return None
        schemas = [(path, _schema(path)) for path in files]
        if self.options.combine == "union_by_name":
            return union_schema(schemas)
        first, expected = schemas[0]
        for path, schema in schemas[1:]:
            if (difference := schema_difference(expected, schema)) is not None:
                msg = f"combine: validate_schema: the schema differs from the first file ({first.name}): {difference}"
                raise DataError(msg, file=str(path), hint="fix the file, or use combine: union_by_name to align "
                                                          "the files by column name")
        return None

    def _read_file(self, path: Path, request: ReadRequest, skip: int, marks: FileMarks) -> Iterator[Batch]:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            msg = f"not a readable Parquet file: {exc}"
            raise DataError(msg, file=str(path)) from None
        row = 0
        for group in range(parquet.num_row_groups):
            group_rows = parquet.metadata.row_group(group).num_rows
            if row + group_rows <= skip:  # loaded before a resume: skipped without decoding
                row += group_rows
                continue
            batches = (Batch(data, position=marks.position(row + offset + data.num_rows, data),
                             source_file=str(path), first_row=row + offset + 1)
                       for offset, data in _offsets(parquet.iter_batches(batch_size=request.batch_size,
                                                                         row_groups=[group])))
            yield from skip_rows(batches, max(skip - row, 0))
            row += group_rows


def _schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        msg = f"not a readable Parquet file: {exc}"
        raise DataError(msg, file=str(path)) from None


def _offsets(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, pa.RecordBatch]]:
    offset = 0
    for data in batches:
        yield offset, data
        offset += data.num_rows


def _dictionary_columns(first_group: pa.Table) -> list[str]:
    """The columns worth dictionary-encoding, judged on the first rows: those with at most one distinct
    value in :data:`_DICTIONARY_RATIO` rows. pyarrow tries a dictionary for every column and falls back to plain
    pages only after filling one, which costs a third of the writing time on unique text (names, e-mails)."""
    sample = first_group.slice(0, _SAMPLE_ROWS)  # counting a whole row group's distinct values took ~60 ms
    chosen = []
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        kind = column.type
        if pa.types.is_nested(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
            continue
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except pa.ArrowNotImplementedError:  # a type Arrow cannot hash: pyarrow's own default
            distinct = 0
        if distinct * _DICTIONARY_RATIO <= len(column):
            chosen.append(name)
    return chosen


# Dictionary encoding pays when values repeat at least this often on average.
_DICTIONARY_RATIO = 2
_SAMPLE_ROWS = 10_000


def _writer(path: Path, schema: pa.Schema, compression: str, first_group: pa.Table) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, compression=compression, use_dictionary=_dictionary_columns(first_group))


class ParquetDestinationOptions(ConnectorOptions):
    path: ConfigPath | None = Field(default=None, description="output file; a resource's `path:` overrides it")
    compression: Literal["snappy", "zstd", "gzip", "lz4", "none"] = "snappy"
    row_group_size: int = Field(default=122_880, ge=1)


class ParquetDestination(FileDestination):
    """Writes one Parquet file per resource, atomically; long loads checkpoint as part files."""

    Options = ParquetDestinationOptions
    options: ParquetDestinationOptions
    extension = "parquet"

    def _file_schema(self, path: Path) -> TableSchema | None:
        return TableSchema.from_arrow(pq.read_schema(path))

    def _open(self, path: Path, *, first: bool) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None  # opened with the first row group, which decides encodings
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def _writer_for(self, first_group: pa.Table) -> pq.ParquetWriter:
        if self._writer is None:
            self._writer = _writer(self._path, self.schema, self.options.compression, first_group)
        return self._writer

    def _append_schema(self, existing: Path, schema: pa.Schema) -> pa.Schema:
        """The existing file's schema, when the new data's values all fit it without changing: a CSV reads
        whole seconds as timestamp[s], which Parquet stores (and reads back) as milliseconds."""
        current = pq.read_schema(existing)
        if current.names != schema.names:
            msg = (f"cannot append: the existing file's columns {current.names} differ from the new data's "
                   f"{schema.names}")
            raise DataError(msg, file=str(existing), hint="use mode: full_refresh, or write to a new file")
        for old, new in zip(current, schema, strict=True):
            if not old.type.equals(new.type) and relate(old.type, new.type) not in (Relation.SAME, Relation.FITS):
                msg = (f"cannot append: column {new.name!r} is {old.type} in the existing file and {new.type} in "
                       "the new data, which it cannot hold without changing values")
                raise DataError(msg, file=str(existing), column=new.name,
                                hint="use mode: full_refresh, or write to a new file")
        return pa.schema([old.with_nullable(old.nullable or new.nullable) for old, new in zip(current, schema,
                                                                                            strict=True)])

    def _copy_existing(self, existing: Path) -> None:
        # Parquet cannot be appended in place: the existing row groups are copied.
        source = pq.ParquetFile(existing)
        for group in range(source.num_row_groups):
            table = source.read_row_group(group).cast(self.schema)
            self._writer_for(table).write_table(table)

    def _write(self, data: pa.RecordBatch) -> None:
        self._pending.append(data)
        self._pending_rows += data.num_rows
        if self._pending_rows >= self.options.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer_for(table).write_table(table, row_group_size=self.options.row_group_size)
            self._pending, self._pending_rows = [], 0

    def _close(self) -> None:
        self._flush()
        self._writer_for(self.schema.empty_table()).close()

    def _discard_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()

    def _assemble(self, parts: list[Path], out: Path) -> None:
        # Row groups are decoded and re-encoded: the price of checkpoints for Parquet output.
        writer: pq.ParquetWriter | None = None
        try:
            for part in parts:
                source = pq.ParquetFile(part)
                for group in range(source.num_row_groups):
                    # Parquet stores some Arrow types in another form (timestamp[s] as milliseconds):
                    # cast back, so the output has the types a load without checkpoints writes.
                    table = source.read_row_group(group).cast(self.schema)
                    writer = writer or _writer(out, self.schema, self.options.compression, table)
                    writer.write_table(table)
            writer = writer or _writer(out, self.schema, self.options.compression, self.schema.empty_table())
        finally:
            if writer is not None:
                writer.close()
