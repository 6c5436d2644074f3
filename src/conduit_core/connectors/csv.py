"""CSV source and destination (pyarrow's streaming reader and writer)."""

from __future__ import annotations

import codecs
import contextlib
import csv as pycsv
import io
import shutil
from collections.abc import Iterator
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
from conduit_core.connectors.files import expand, resume_files, skip_rows
from conduit_core.errors import ConfigError, DataError
from conduit_core.schema.model import Column, TableSchema

_SAMPLE_BYTES = 256 * 1024
_MAX_BLOCK = 2 * 1024 * 1024


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

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._schema: pa.Schema | None = None

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
        if request.schema is not None:
            self._schema = request.schema  # resuming: keep the types the load started with
        for path, skip in resume_files(self._files(), request.resume_position):
            yield from skip_rows(self._read_file(path, request), skip)

    # -- one file ---------------------------------------------------------------
    def _read_file(self, path: Path, request: ReadRequest) -> Iterator[Batch]:
        opts = self.options
        with contextlib.ExitStack() as files:
            handle = files.enter_context(io.BufferedReader(io.FileIO(path, "rb"), buffer_size=_SAMPLE_BYTES))
            sample = handle.peek(_SAMPLE_BYTES)[:_SAMPLE_BYTES]
            dialect = sniff(sample, path, encoding=opts.encoding, delimiter=opts.delimiter)
            row_bytes = max(len(sample) / max(sample.count(b"\n"), 1), 1.0)
            # pyarrow keeps many blocks in flight; blocks over ~2 MB make peak memory grow
            # with the file's size (measured: flat at 2 MB, +45% from 1M to 5M rows at 7.5 MB).
            block = int(min(max(request.batch_size * row_bytes, 64 * 1024), _MAX_BLOCK))
            reader = self._open(handle, path, dialect, block, {})
            if overrides := self._overrides(reader.schema):
                # Only the first block was parsed (nothing emitted yet): parse again with fixed types,
                # from a handle of its own. The first reader may still be reading ahead in a pyarrow
                # thread, so its handle is neither rewound nor closed before we are done.
                again = files.enter_context(io.BufferedReader(io.FileIO(path, "rb"), buffer_size=_SAMPLE_BYTES))
                reader = self._open(again, path, dialect, block, overrides)
            self._check_text(reader.schema, path, dialect)
            self._check_columns(reader.schema, path)
            row = 0
            schema = reader.schema

            def locate(exc: Exception) -> BaseException:
                return self._locate_error(exc, path, dialect, schema)

            for block_data in iter_batches(reader, locate, (pa.ArrowInvalid,)):
                for data in slices(block_data, request.batch_size):
                    yield Batch(data, position={"file": str(path), "row": row + data.num_rows},
                                source_file=str(path), first_row=row + 1)
                    row += data.num_rows
            if row == 0:
                # A header-only file still carries its schema (a full_refresh of it empties the target).
                empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
                yield Batch(empty, position={"file": str(path), "row": 0}, source_file=str(path))

    def _overrides(self, schema: pa.Schema) -> dict[str, pa.DataType]:
        """Types to force after a first look: strings when inference is off, and for
        columns that were empty in the whole first block (Arrow type null)."""
        if self._schema is not None:
            return {}
        declared = set(self.options.column_types)
        return {f.name: pa.string() for f in schema
                if f.name not in declared and (not self.options.infer_types or pa.types.is_null(f.type))}

    def _open(self, handle: io.BufferedReader[io.FileIO], path: Path, dialect: Dialect,
              block: int, overrides: dict[str, pa.DataType]) -> pacsv.CSVStreamingReader:
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
        types: dict[str, pa.DataType] = {n: _arrow_type(n, t) for n, t in opts.column_types.items()}
        types.update(overrides)
        if self._schema is not None:
            types = {f.name: f.type for f in self._schema}
        convert = pacsv.ConvertOptions(
            null_values=list(opts.null_values), strings_can_be_null=True, quoted_strings_can_be_null=False,
            true_values=list(opts.true_values), false_values=list(opts.false_values), column_types=types,
        )
        try:
            return pacsv.open_csv(handle, read_options=read, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise self._locate_error(exc, path, dialect, None) from None
        except UnicodeDecodeError as exc:
            msg = f"cannot decode the file as {dialect.encoding}: {exc.reason}"
            raise DataError(msg, file=str(path), hint="set `encoding:` on the source (e.g. cp1252)") from None

    def _check_text(self, schema: pa.Schema, path: Path, dialect: Dialect) -> None:
        # pyarrow falls back to a binary column when bytes do not decode; that
        # would silently turn text into bytes, so it is an encoding error instead.
        declared = set(self.options.column_types)
        for field in schema:
            if pa.types.is_binary(field.type) and field.name not in declared:
                msg = f"values are not valid {dialect.encoding} text"
                hint = "set `encoding:` on the source (e.g. cp1252), or `encoding: auto` to detect it"
                raise DataError(msg, file=str(path), column=field.name, hint=hint)

    def _check_columns(self, schema: pa.Schema, path: Path) -> None:
        if self._schema is None:
            self._schema = schema
            return
        if schema.names != self._schema.names:
            msg = (f"columns differ from the first file of the glob: expected {self._schema.names}, "
                   f"found {schema.names}")
            raise DataError(msg, file=str(path), hint="read files with different layouts as separate resources")

    def _locate_error(self, exc: pa.ArrowInvalid, path: Path, dialect: Dialect,
                      schema: pa.Schema | None) -> DataError:
        """Find the row behind a pyarrow error (error path only: a Python re-scan)."""
        from conduit_core.connectors.csv_locate import locate

        return locate(exc, path, dialect, schema, self.options)


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
