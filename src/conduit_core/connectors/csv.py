"""CSV source and destination (pyarrow's streaming reader and writer)."""

from __future__ import annotations

import codecs
import contextlib
import csv as pycsv
import io
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from pydantic import Field, field_validator

from conduit_core.batch import Batch, iter_batches, slices
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import (
    BaseSource,
    ConnectorOptions,
    ReadRequest,
)
from conduit_core.connectors.csv_sniff import Dialect, sniff
from conduit_core.connectors.file_destination import FileDestination
from conduit_core.connectors.files import (
    Combine,
    FileMarks,
    Listing,
    align,
    column_difference,
    expand,
    resume_files,
    skip_rows,
    union_schema,
)
from conduit_core.errors import ConfigError, DataError
from conduit_core.schema.exact import Inexact, convert_columns, decide, is_number
from conduit_core.schema.model import Column, TableSchema
from conduit_core.schema.types import type_name

_SAMPLE_BYTES = 256 * 1024
_BLOCK = 2 * 1024 * 1024


def _gathered(blocks: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Parsed blocks (2 MiB: often fewer rows than a batch) joined into batches of ``rows`` rows: every later
    step pays a fixed cost per batch (a DuckDB query in a transform step, a write call), so batches are filled.
    The first block is passed on alone: the types are decided from it, the sample pyarrow inferred them from."""
    first = next(blocks, None)
    if first is None:
        return
    yield first
    pending: list[pa.RecordBatch] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += block.num_rows
        while count >= rows:
            joined = pa.concat_batches(pending) if len(pending) > 1 else pending[0]
            yield joined.slice(0, rows)
            rest = joined.slice(rows)
            pending, count = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if pending:
        yield pa.concat_batches(pending) if len(pending) > 1 else pending[0]


def _handle(files: contextlib.ExitStack, path: Path) -> io.BufferedReader[io.FileIO]:
    return files.enter_context(io.BufferedReader(io.FileIO(path, "rb"), buffer_size=_SAMPLE_BYTES))


class CsvSourceOptions(ConnectorOptions):
    path: ConfigPath = Field(description="file or glob, e.g. data/*.csv")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1, description="auto-detected if unset")
    quote_char: str | Literal[False] = Field(default='"', description="false disables quoting")
    escape_char: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str = Field(default="auto", description="auto (UTF-8; others only when unambiguous) or a codec name")
    header: bool = True
    column_names: tuple[str, ...] | None = None
    null_values: tuple[str, ...] = ("",)
    true_values: tuple[str, ...] = ("true", "True", "TRUE")
    false_values: tuple[str, ...] = ("false", "False", "FALSE")
    column_types: dict[str, str] = Field(default_factory=dict, description="override inferred types: {zip: string}")
    infer_types: bool = True
    skip_rows: int = Field(default=0, ge=0)
    block_size: int | None = Field(default=None, ge=64 * 1024, le=1024 * 1024 * 1024,
                                   description="bytes parsed at a time (default 2 MiB); raise it for "
                                               "records larger than half a block")
    combine: Combine = Field(default="concat", description="for a glob: concat (same columns), union_by_name, "
                                                           "or validate_schema (checked before reading)")

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                msg = (f"unknown encoding {value!r}; use auto, utf-8, utf-8-sig, cp1252, latin-1 or another Python "
                       "codec name")
                raise ValueError(msg) from None
        return value

    @field_validator("quote_char")
    @classmethod
    def _one_char(cls, value: str | Literal[False]) -> str | Literal[False]:
        if isinstance(value, str) and len(value) != 1:
            msg = "quote_char must be a single character or false"
            raise ValueError(msg)
        return value


def _arrow_type(name: str, type_text: str) -> pa.DataType:
    aliases = {"integer": "int64", "int": "int64", "bigint": "int64", "float": "float64", "double": "float64",
               "text": "string", "varchar": "string", "boolean": "bool", "date": "date32",
               "timestamp": "timestamp[us]"}
    text = aliases.get(type_text.lower(), type_text.lower())
    try:
        if text.startswith("decimal"):
            precision, _, scale = text.removeprefix("decimal").strip("()").partition(",")
            return pa.decimal128(int(precision), int(scale or 0))
        if text.startswith("timestamp["):
            return pa.timestamp(text[10:-1])
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        msg = (f"column_types.{name}: unknown type {type_text!r}; use string, int64, float64, bool, date32, "
               "timestamp[us] or decimal(p,s)")
        raise ConfigError(msg) from None


class CsvSource(BaseSource):
    """Delimited text files; one file or a glob read as one stream."""

    Options = CsvSourceOptions
    options: CsvSourceOptions
    rereadable = True

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        #: The types this source emits, fixed by the first block of the first file (or by a resumed load).
        self._schema: pa.Schema | None = None
        #: The column names of the first file, which every file of a glob must repeat.
        self._names: list[str] | None = None

    def _files(self) -> list[Path]:
        return expand(self.options.path)

    def test_connection(self) -> bool:
        self._files()
        return True

    def estimate_total_records(self) -> int | None:
        total = 0
        for path in self._files():
            with path.open("rb") as handle:
                sample = handle.read(_SAMPLE_BYTES)
            lines = max(sample.count(b"\n"), 1)
            total += int(path.stat().st_size * lines / max(len(sample), 1)) - int(self.options.header)
        return max(total, 0)

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        listing = Listing(self._files())
        if request.schema is not None:
            self._schema = request.schema  # resuming: keep the types the load started with
        elif len(listing.files) > 1 and self.options.combine == "union_by_name":
            self._schema = self._union(listing.files, request)
        if len(listing.files) > 1 and self.options.combine == "validate_schema":
            self._validate(listing.files)
        for path, skip, last in resume_files(listing.files, request.resume_position):
            yield from skip_rows(self._read_file(path, request, listing.marks(path)), skip, last)

    def _first_schema(self, path: Path, request: ReadRequest) -> pa.Schema:
        """The types the first batch of ``path`` would have, read on its own."""
        alone = CsvSource(self.options.model_copy(update={"combine": "concat"}))
        batches = alone._read_file(path, request, Listing([path]).marks(path))
        try:
            return next(batches).schema
        finally:
            batches.close()

    def _union(self, files: list[Path], request: ReadRequest) -> pa.Schema:
        """Every column of every file, typed by the first file that has it (its first rows, as for one file)."""
        schemas: list[tuple[Path, pa.Schema]] = []
        typed: dict[str, pa.Field] = {}
        for path in files:
            names = self._header(path)
            if any(name not in typed for name in names):
                typed.update({f.name: f for f in self._first_schema(path, request) if f.name not in typed})
            schemas.append((path, pa.schema([typed[name] for name in names])))
        return union_schema(schemas)

    def _validate(self, files: list[Path]) -> None:
        """Before a row is read: every file has the first one's columns, in its order."""
        expected = self._header(files[0])
        for path in files[1:]:
            found = self._header(path)
            if found != expected:
                msg = (f"combine: validate_schema: columns differ from the first file ({files[0].name}): "
                       f"{column_difference(expected, found)}")
                raise DataError(msg, file=str(path), hint="fix the file, or use combine: union_by_name to align "
                                                          "the files by column name")

    def _header(self, path: Path) -> list[str]:
        with contextlib.ExitStack() as files:
            handle = _handle(files, path)
            sample = handle.peek(_SAMPLE_BYTES)[:_SAMPLE_BYTES]
            dialect = sniff(sample, path, encoding=self.options.encoding, delimiter=self.options.delimiter)
            return list(self._open(handle, path, dialect, self._block_size(), None).schema.names)

    # -- one file ---------------------------------------------------------------
    def _block_size(self) -> int:
        # pyarrow keeps many blocks in flight; blocks over ~2 MB make peak memory grow with the file's size
        # (measured: flat at 2 MB, +45% from 1M to 5M rows at 7.5 MB). The block does not depend on the
        # batch size, so which records fit (and the first block, the sample types come from) never changes
        # with --batch-size.
        return self.options.block_size or _BLOCK

    def _read_file(self, path: Path, request: ReadRequest, marks: FileMarks) -> Generator[Batch, None, None]:
        opts = self.options
        with contextlib.ExitStack() as files:
            handle = _handle(files, path)
            sample = handle.peek(_SAMPLE_BYTES)[:_SAMPLE_BYTES]
            dialect = sniff(sample, path, encoding=opts.encoding, delimiter=opts.delimiter)
            block = self._block_size()
            declared = set(opts.column_types)
            if self._schema is None:
                # pyarrow's guess from the first block. Numbers are then read as text and converted exactly
                # (schema.exact): pyarrow's own conversion would drop leading zeros and round long numbers.
                guess = self._open(handle, path, dialect, block, None).schema
                self._check_text(guess, path, dialect)
                numbers = {f.name: f.type for f in guess if is_number(f.type) and f.name not in declared}
                types = {f.name: pa.string() if f.name in numbers else self._forced(f) for f in guess}
                decided = False
                # The first reader may still be reading ahead in a pyarrow thread, so its handle is neither
                # rewound nor closed before we are done: the second reader gets a handle of its own.
                handle = _handle(files, path)
            else:
                numbers = {f.name: f.type for f in self._schema if is_number(f.type) and f.name not in declared}
                types = {f.name: pa.string() if f.name in numbers else f.type for f in self._schema}
                decided = True
            reader = self._open(handle, path, dialect, block, types)
            self._check_text(reader.schema, path, dialect)
            self._check_columns(reader.schema, path)
            numbers = {name: kind for name, kind in numbers.items() if name in reader.schema.names}
            row = 0
            schema = reader.schema

            def locate(exc: Exception) -> BaseException:
                return self._locate_error(exc, path, dialect, schema, block)

            blocks = iter_batches(reader, locate, (pa.ArrowInvalid,))
            for block_data in _gathered(blocks, request.batch_size):
                if not decided:
                    numbers = {name: decide(block_data.column(name), guessed) for name, guessed in numbers.items()}
                    decided = True
                exact = self._exact(block_data, numbers, path, dialect, row)
                if self._schema is None:
                    self._schema = exact.schema
                if self.options.combine == "union_by_name":
                    exact = align(exact, self._schema)
                for data in slices(exact, request.batch_size):
                    yield Batch(data, position=marks.position(row + data.num_rows, data), source_file=str(path),
                                first_row=row + 1)
                    row += data.num_rows
            if row == 0:
                # A header-only file still carries its schema (a full_refresh of it empties the target).
                if self._schema is None:
                    self._schema = pa.schema([pa.field(f.name, numbers.get(f.name, f.type)) for f in reader.schema])
                empty = pa.RecordBatch.from_pylist([], schema=self._schema)
                yield Batch(empty, position=marks.position(0, empty), source_file=str(path))

    def _exact(self, data: pa.RecordBatch, numbers: dict[str, pa.DataType], path: Path, dialect: Dialect,
               row: int) -> pa.RecordBatch:
        """``data`` with its number columns converted from text without changing a value."""

        def fail(name: str, target: pa.DataType, exc: Inexact) -> DataError:
            from conduit_core.connectors.csv_locate import line_of_row

            at = row + exc.index + 1
            msg = (f"value {exc.value!r} {exc.why}: the column was typed {type_name(target)} from the first "
                   "rows of the file, and a value is never rounded or cut to fit a type")
            return DataError(msg, file=str(path), line=line_of_row(path, dialect, self.options, at), row=at,
                             column=name, hint=f"declare the column's type on the source, e.g. column_types: "
                                               f"{{{name}: string}}")

        return convert_columns(data, numbers, fail)

    def _forced(self, field: pa.Field) -> pa.DataType:
        """A column's type after a first look: text when inference is off (unless declared), and for
        columns that were empty in the whole first block (Arrow type null)."""
        if field.name in self.options.column_types:
            return field.type
        if not self.options.infer_types or pa.types.is_null(field.type):
            return pa.string()
        return field.type

    def _open(self, handle: io.BufferedReader[io.FileIO], path: Path, dialect: Dialect,
              block: int, types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
        """A streaming reader; ``types`` pins every column's type (None: the declared ones, the rest inferred)."""
        opts = self.options
        names = list(opts.column_names) if opts.column_names else None
        read = pacsv.ReadOptions(
            encoding=dialect.encoding, block_size=block, skip_rows=opts.skip_rows, use_threads=True,
            column_names=names, autogenerate_column_names=not opts.header and names is None,
        )
        if names and opts.header:
            read.skip_rows_after_names = 1
        parse = pacsv.ParseOptions(
            delimiter=dialect.delimiter, quote_char=opts.quote_char, escape_char=opts.escape_char or False,
            double_quote=opts.escape_char is None, newlines_in_values=opts.quote_char is not False,
        )
        if types is None:
            types = {n: _arrow_type(n, t) for n, t in opts.column_types.items()}
        convert_options = pacsv.ConvertOptions(
            null_values=list(opts.null_values), strings_can_be_null=True, quoted_strings_can_be_null=False,
            true_values=list(opts.true_values), false_values=list(opts.false_values), column_types=types,
        )
        try:
            return pacsv.open_csv(handle, read_options=read, parse_options=parse,
                                  convert_options=convert_options)
        except pa.ArrowInvalid as exc:
            raise self._locate_error(exc, path, dialect, None, block) from None
        except UnicodeDecodeError as exc:
            msg = f"cannot decode the file as {dialect.encoding}: {exc.reason}"
            raise DataError(msg, file=str(path), hint="set `encoding:` on the source (e.g. cp1252)") from None

    def _check_text(self, schema: pa.Schema, path: Path, dialect: Dialect) -> None:
        # pyarrow falls back to a binary column when bytes do not decode; that
        # would silently turn text into bytes, so it is an encoding error instead.
        declared = set(self.options.column_types)
        for field in schema:
            if pa.types.is_binary(field.type) and field.name not in declared:
                from conduit_core.connectors.csv_locate import undecodable

                line, row, column = undecodable(path, dialect, self.options)
                msg = f"values are not valid {dialect.encoding} text"
                hint = "set `encoding:` on the source (e.g. cp1252), or `encoding: auto` to detect it"
                raise DataError(msg, file=str(path), line=line, row=row, column=column or field.name, hint=hint)

    def _check_columns(self, schema: pa.Schema, path: Path) -> None:
        if self.options.combine == "union_by_name":
            known = self._schema.names if self._schema is not None else schema.names
            if extra := [name for name in schema.names if name not in known]:
                # Only after a resume: the union was taken before the checkpoint, and this file has changed.
                msg = f"columns {extra} are not among the columns the load started with ({known})"
                raise DataError(msg, file=str(path), hint="the files changed since the checkpoint; `conduit state "
                                                          "reset RESOURCE` and load again")
            return
        if self._names is None:
            self._names = schema.names
            return
        if schema.names != self._names:
            msg = (f"columns differ from the first file of the glob: {column_difference(self._names, schema.names)} "
                   f"(expected {self._names})")
            raise DataError(msg, file=str(path), hint="use combine: union_by_name to align files by column name, "
                                                      "or read them as separate resources")

    def _locate_error(self, exc: pa.ArrowInvalid, path: Path, dialect: Dialect,
                      schema: pa.Schema | None, block: int) -> DataError:
        """Find the row behind a pyarrow error (error path only: a Python re-scan)."""
        from conduit_core.connectors.csv_locate import locate

        return locate(exc, path, dialect, schema, self.options, block)


class CsvDestinationOptions(ConnectorOptions):
    path: ConfigPath | None = Field(default=None, description="output file; a resource's `path:` overrides it")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    quoting: Literal["needed", "all_valid", "none"] = "needed"


class CsvDestination(FileDestination):
    """Writes one CSV file per resource, atomically; long loads checkpoint as part files."""

    Options = CsvDestinationOptions
    options: CsvDestinationOptions
    extension = "csv"

    def _file_schema(self, path: Path) -> TableSchema | None:
        if not self.options.header:
            return None
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(pycsv.reader(handle, delimiter=self.options.delimiter), [])
        # CSV has no types: only the column names are compared.
        return TableSchema(tuple(Column(name, None) for name in header)) if header else None

    def _open(self, path: Path, *, first: bool) -> None:
        # Only the first part carries the header: the parts are concatenated byte for byte.
        write = pacsv.WriteOptions(include_header=first and self.options.header, delimiter=self.options.delimiter,
                                   quoting_style=self.options.quoting)
        self._sink = path.open("ab")
        self._writer = pacsv.CSVWriter(self._sink, self.schema, write_options=write)

    def _copy_existing(self, existing: Path) -> None:
        if self.options.header:
            with existing.open(encoding="utf-8", newline="") as handle:
                header = next(pycsv.reader(handle, delimiter=self.options.delimiter), [])
            if header and header != self.schema.names:
                msg = f"cannot append: the existing header {header} differs from the new columns {self.schema.names}"
                raise DataError(msg, file=str(existing), hint="use mode: full_refresh, or write to a new file")
        with existing.open("rb") as source:
            shutil.copyfileobj(source, self._sink, 1024 * 1024)
            self._sink.flush()

    def _write(self, data: pa.RecordBatch) -> None:
        self._writer.write_batch(data)

    def _close(self) -> None:
        self._writer.close()
        self._sink.close()
