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


def _records(path: Path, dialect: Dialect, opts: CsvSourceOptions) -> Any:
    handle = path.open(encoding=dialect.encoding, errors="replace", newline="")
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if opts.quote_char is False else csv.QUOTE_MINIMAL
    return csv.reader(handle, delimiter=dialect.delimiter, quotechar=opts.quote_char or '"',
                      escapechar=opts.escape_char, doublequote=opts.escape_char is None, quoting=quoting)


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
           opts: CsvSourceOptions) -> DataError:
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
        msg = f"invalid {dialect.encoding} data: {text}"
        return DataError(msg, file=file, hint="set `encoding:` on the source (e.g. cp1252)")
    return DataError(f"cannot read CSV: {text}", file=file)
