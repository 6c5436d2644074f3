"""Explain a pyarrow CSV error with file, line and row.

pyarrow's streaming reader does not report row numbers, so after a failure the
file is scanned once more with Python's csv module up to the offending record.
This runs only on the error path.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from conduit_core.connectors.csv_sniff import Dialect
from conduit_core.errors import DataError

if TYPE_CHECKING:
    from conduit_core.connectors.csv import CsvSourceOptions

_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")
_CONVERT = re.compile(r"In CSV column #(\d+): .*?conversion error to ([^:]+): invalid value '(.*)'", re.DOTALL)


def _records(path: Path, dialect: Dialect, opts: CsvSourceOptions, errors: str = "replace") -> Any:
    # The scan must get through any field pyarrow could read (Python's default limit is 128 KiB).
    csv.field_size_limit(2**31 - 1)
    handle = path.open(encoding=dialect.encoding, errors=errors, newline="")
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if opts.quote_char is False else csv.QUOTE_MINIMAL
    return csv.reader(handle, delimiter=dialect.delimiter, quotechar=opts.quote_char or '"',
                      escapechar=opts.escape_char, doublequote=opts.escape_char is None, quoting=quoting)


def undecodable(path: Path, dialect: Dialect, opts: CsvSourceOptions) -> tuple[int | None, int | None, str | None]:
    """Line, row and column of the first value whose bytes are not text in the dialect's encoding."""
    reader = _records(path, dialect, opts, errors="surrogateescape")
    first_data = 1 + opts.skip_rows + int(opts.header)
    names: list[str] = []
    start = 1
    for number, record in enumerate(reader, start=1):
        if number == first_data - 1 and opts.header:
            names = record
        for index, value in enumerate(record):
            if any("\udc80" <= char <= "\udcff" for char in value):
                column = names[index] if index < len(names) else f"#{index + 1}"
                return start, max(number - first_data + 1, 0) or None, column
        start = reader.line_num + 1
    return None, None, None


def oversized(path: Path, dialect: Dialect, opts: CsvSourceOptions, block: int) -> DataError:
    """A record larger than the block pyarrow parses at a time: where it is, and a block size that holds it."""
    first_data = 1 + opts.skip_rows + int(opts.header)
    reader = _records(path, dialect, opts)
    start = 1
    for number, record in enumerate(reader, start=1):
        size = sum(len(value) for value in record) + len(record)
        if size > block // 2:
            mib = 1024 * 1024
            needed = -(-4 * size // mib) * mib  # room for the record wherever it falls in a block
            msg = (f"a record of about {size:,} bytes does not fit the {block:,}-byte blocks the file is "
                   "parsed in")
            return DataError(msg, file=str(path), line=start, row=max(number - first_data + 1, 1),
                             hint=f"set `block_size: {needed}` (or more) on the source")
        start = reader.line_num + 1
    return DataError(f"a record does not fit the {block:,}-byte blocks the file is parsed in", file=str(path),
                     hint=f"set `block_size:` on the source to more than {block:,}")


def line_of_row(path: Path, dialect: Dialect, opts: CsvSourceOptions, row: int) -> int | None:
    """The line on which data row ``row`` (1-based) starts (a quoted value may span lines)."""
    first_data = 1 + opts.skip_rows + int(opts.header)
    reader = _records(path, dialect, opts)
    start = 1
    for number, _ in enumerate(reader, start=1):
        if number - first_data + 1 == row:
            return start
        start = reader.line_num + 1
    return None


def locate(exc: pa.ArrowInvalid, path: Path, dialect: Dialect, schema: pa.Schema | None,
           opts: CsvSourceOptions, block: int) -> DataError:
    text = str(exc)
    file = str(path)
    first_data = 1 + opts.skip_rows + int(opts.header)
    if match := _RAGGED.search(text):
        expected = int(match.group(1))
        reader = _records(path, dialect, opts)
        start = 1
        for number, record in enumerate(reader, start=1):
            if number >= first_data and record and len(record) != expected:
                msg = f"row has {len(record)} fields, expected {expected}"
                return DataError(msg, file=file, line=start, row=number - first_data + 1,
                                 hint="fix the row, or check `delimiter:` and `quote_char:`")
            start = reader.line_num + 1
        return DataError(f"malformed CSV: {text}", file=file)
    if (match := _CONVERT.search(text)) and schema is not None:
        index, type_name, value = int(match.group(1)), match.group(2), match.group(3)
        column = schema.names[index] if index < len(schema.names) else f"#{index}"
        line = row = None
        reader = _records(path, dialect, opts)
        start = 1
        for number, record in enumerate(reader, start=1):
            if number >= first_data and index < len(record) and record[index] == value:
                line, row = start, number - first_data + 1
                break
            start = reader.line_num + 1
        msg = (f"value {value!r} is not {type_name}; the column's type was inferred as {type_name} "
               "from the first rows of the file")
        return DataError(msg, file=file, line=line, row=row, column=column,
                         hint=f"declare the type on the source, e.g. column_types: {{{column}: string}}")
    if "UTF8" in text or "utf8" in text.lower():
        line, row, column = undecodable(path, dialect, opts)
        msg = f"values are not valid {dialect.encoding} text"
        return DataError(msg, file=file, line=line, row=row, column=column,
                         hint="set `encoding:` on the source (e.g. cp1252), or `encoding: auto` to detect it")
    if "straddl" in text:
        return oversized(path, dialect, opts, block)
    return DataError(f"cannot read CSV: {text}", file=file)
