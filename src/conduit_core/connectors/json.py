"""JSON (array) and NDJSON sources via DuckDB's streaming JSON reader; NDJSON destination."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

if TYPE_CHECKING:
    import duckdb

from conduit_core.batch import Batch
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import (
    BaseSource,
    ConnectorOptions,
    ReadRequest,
)
from conduit_core.connectors.duckdb import arrow_batches
from conduit_core.connectors.file_destination import FileDestination
from conduit_core.connectors.files import (
    Combine,
    FileMarks,
    Listing,
    column_difference,
    expand,
    resume_files,
    skip_rows,
)
from conduit_core.errors import DataError
from conduit_core.schema.exact import Inexact, NumberText, convert_columns
from conduit_core.schema.types import type_name

JsonFormat = Literal["auto", "array", "ndjson"]
_DUCKDB_FORMAT = {"auto": "auto", "array": "array", "ndjson": "newline_delimited"}


class JsonSourceOptions(ConnectorOptions):
    path: ConfigPath = Field(description="file or glob")
    format: JsonFormat = "auto"
    sample_size: int = Field(default=20_480, ge=1, description="records sampled to detect dates and timestamps "
                                                               "in strings")
    combine: Combine = Field(default="concat", description="for a glob: keys are aligned by name either way; "
                                                           "validate_schema checks every file has the first "
                                                           "one's keys before reading")


#: Types DuckDB may detect in JSON strings from a sample; a later string that does not parse fails the read.
_TEXT_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME", "UUID")


def _duck_type(structure: Any) -> str:
    """The DuckDB type of a nested JSON structure (``json_group_structure``'s notation)."""
    if isinstance(structure, dict):
        if not structure:
            return "JSON"
        return "STRUCT(" + ", ".join(f"{_quote(k)} {_duck_type(v)}" for k, v in structure.items()) + ")"
    if isinstance(structure, list):
        return f"{_duck_type(structure[0]) if structure else 'JSON'}[]"
    return {"UBIGINT": "BIGINT", "NULL": "VARCHAR"}.get(str(structure), str(structure))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Layout:
    """How to read every file: a DuckDB type per key of the whole input, and the keys read as number text."""

    columns: dict[str, str]
    #: Keys whose numbers are read as their JSON text and converted exactly (schema.exact) to the type
    #: that holds every value of the input: DuckDB would turn 99999999999999999999 into 1e20, and into
    #: a sampled BIGINT column it rounds 25001.5 to 25002.
    numbers: dict[str, pa.DataType]


class JsonSource(BaseSource):
    """JSON documents: an array of objects, or one object per line (NDJSON).

    Columns and types come from the whole input, not a sample: a key first seen in the last record is a
    column, and a number that needs a wider type than the first records did gets it.
    """

    Options: ClassVar[type[JsonSourceOptions]] = JsonSourceOptions
    options: JsonSourceOptions
    rereadable = True
    default_format: ClassVar[JsonFormat] = "auto"

    def _format(self) -> str:
        fmt = self.options.format if self.options.format != "auto" else self.default_format
        return _DUCKDB_FORMAT[fmt]

    def test_connection(self) -> bool:
        expand(self.options.path)
        return True

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        import duckdb
        con = duckdb.connect()
        try:
            files = expand(self.options.path)
            if len(files) > 1 and self.options.combine == "validate_schema":
                self._validate(con, files)
            layout = self._layout(con, files)
            if request.schema is not None:
                # Resuming: the numbers keep the types the load started with (a value that no longer fits
                # them fails), even if the files grew since.
                started = {f.name: f.type for f in request.schema}
                layout = _Layout(layout.columns, {k: started.get(k, t) for k, t in layout.numbers.items()})
            listing = Listing(files)
            for path, skip, last in resume_files(files, request.resume_position):
                yield from skip_rows(self._read_file(con, path, request, layout, listing.marks(path)), skip, last)
        finally:
            con.close()

    def _keys(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        import duckdb

        quoted = str(path).replace("'", "''")
        try:
            rows = con.execute(f"SELECT json_group_structure(json) FROM read_json_objects('{quoted}', "
                               f"format='{self._format()}')").fetchall()
        except duckdb.Error as exc:
            raise _read_error(exc, path) from None
        structure = json.loads(rows[0][0]) if rows and rows[0][0] else {}
        return list(structure) if isinstance(structure, dict) else []

    def _validate(self, con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
        """Before a record is loaded: every file has the keys of the first one (in any order)."""
        expected = self._keys(con, files[0])
        for path in files[1:]:
            found = self._keys(con, path)
            if set(found) != set(expected):  # keys are matched by name: their order does not matter
                msg = (f"combine: validate_schema: the keys differ from the first file ({files[0].name}): "
                       f"{column_difference(expected, found)}")
                raise DataError(msg, file=str(path), hint="fix the file, or leave combine at concat (keys are "
                                                          "aligned by name; a missing key is NULL)")

    def _layout(self, con: duckdb.DuckDBPyConnection, files: list[Path]) -> _Layout:
        """One pass over every file for the keys and JSON types of all records (``json_group_structure``),
        and DuckDB's sampled detection of dates and timestamps in strings."""
        import duckdb

        listing = "[" + ", ".join(f"'{str(f).replace(chr(39), chr(39) * 2)}'" for f in files) + "]"
        try:
            rows = con.execute(f"SELECT json_group_structure(json) FROM read_json_objects({listing}, "
                               f"format='{self._format()}')").fetchall()
            structure = json.loads(rows[0][0]) if rows and rows[0][0] else {}
            sampled = con.read_json([str(f) for f in files], format=self._format(), records="true",  # type: ignore[arg-type]
                                    sample_size=self.options.sample_size, union_by_name=True)
            detected = dict(zip(sampled.columns, (str(t) for t in sampled.types), strict=True))
        except duckdb.Error as exc:
            raise _read_error(exc, files[0]) from None
        if not isinstance(structure, dict):
            msg = "the records are not JSON objects (each record must be an object of column: value)"
            raise DataError(msg, file=str(files[0]), hint="check `format:` (array of objects, or one object per line)")
        columns: dict[str, str] = {}
        numbers: dict[str, pa.DataType] = {}
        for key, kind in structure.items():
            if kind in ("UBIGINT", "DOUBLE"):
                columns[key], numbers[key] = "VARCHAR", pa.int64() if kind == "UBIGINT" else pa.float64()
            elif kind == "VARCHAR":
                columns[key] = detected[key] if detected.get(key) in _TEXT_TYPES else "VARCHAR"
            elif kind in ("NULL", "JSON"):
                columns[key] = "VARCHAR"  # no value, or values of several kinds: their text
            else:
                columns[key] = _duck_type(kind)
        if numbers:
            numbers = self._number_types(con, files, numbers)
        return _Layout(columns, numbers)

    def _number_types(self, con: duckdb.DuckDBPyConnection, files: list[Path],
                      guesses: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
        """A second pass over the number keys only, as their JSON text: the type that holds every value of
        the whole input exactly (``schema.exact.NumberText``)."""
        import duckdb

        seen = {key: NumberText() for key in guesses}
        try:
            relation = con.read_json([str(f) for f in files], format=self._format(), records="true",  # type: ignore[arg-type]
                                     columns=dict.fromkeys(guesses, "VARCHAR"))
            for data in arrow_batches(relation, 100_000):
                for key in guesses:
                    seen[key] = seen[key].merge(NumberText.of(data.column(key)))
        except duckdb.Error as exc:
            raise _read_error(exc, files[0]) from None
        return {key: seen[key].type(guess) for key, guess in guesses.items()}

    def _read_file(self, con: duckdb.DuckDBPyConnection, path: Path, request: ReadRequest,
                   layout: _Layout, marks: FileMarks) -> Iterator[Batch]:
        import duckdb
        row = 0
        try:
            if layout.columns:
                relation = con.read_json(str(path), format=self._format(), records="true",  # type: ignore[arg-type]
                                         columns=layout.columns)
            else:  # no records at all: DuckDB says what an empty input holds
                relation = con.read_json(str(path), format=self._format(), records="true")  # type: ignore[arg-type]
            for data in arrow_batches(relation, request.batch_size):
                data = _exact(data, layout.numbers, path, row)  # noqa: PLW2901 - the converted batch replaces it
                yield Batch(data, position=marks.position(row + data.num_rows, data), source_file=str(path),
                            first_row=row + 1)
                row += data.num_rows
        except duckdb.Error as exc:
            raise _read_error(exc, path) from None


def _exact(data: pa.RecordBatch, numbers: dict[str, pa.DataType], path: Path, row: int) -> pa.RecordBatch:
    """``data`` with its number columns converted from their JSON text without changing a value."""

    def fail(name: str, target: pa.DataType, exc: Inexact) -> DataError:
        msg = f"value {exc.value} {exc.why} ({type_name(target)}); a value is never rounded or cut to fit a type"
        return DataError(msg, file=str(path), row=row + exc.index + 1, column=name,
                         hint="declare the key's type in the resource's `schema:` (e.g. string)")

    return convert_columns(data, numbers, fail)


def _read_error(exc: Exception, path: Path) -> DataError:
    detail = str(exc).split("\n", 1)[0]
    msg = f"cannot read JSON: {detail}"
    return DataError(msg, file=str(path),
                     hint="check the file is valid JSON (an array of objects, or one object per line)")


class NdjsonSource(JsonSource):
    """Newline-delimited JSON: one object per line, streamed in bounded memory."""

    default_format = "ndjson"


class NdjsonDestinationOptions(ConnectorOptions):
    path: ConfigPath | None = Field(default=None, description="output file; a resource's `path:` overrides it")


class NdjsonDestination(FileDestination):
    """Writes one object per line, atomically; long loads checkpoint as part files."""

    Options = NdjsonDestinationOptions
    options: NdjsonDestinationOptions
    extension = "ndjson"

    def _open(self, path: Path, *, first: bool) -> None:
        import duckdb

        self._sink = path.open("ab")
        self._con = duckdb.connect()

    def _copy_existing(self, existing: Path) -> None:
        with existing.open("rb") as source:
            shutil.copyfileobj(source, self._sink, 1024 * 1024)

    def _write(self, data: pa.RecordBatch) -> None:
        # DuckDB renders each row as JSON text; the Arrow value buffer already
        # holds the lines back to back, so it is written out without a Python loop.
        self._con.register("_conduit_batch", data)
        try:
            lines: pa.Table = self._con.sql(
                "SELECT to_json(t)::VARCHAR || chr(10) AS line FROM _conduit_batch AS t").to_arrow_table()
        finally:
            self._con.unregister("_conduit_batch")
        for chunk in lines.column("line").chunks:
            self._sink.write(_values_buffer(chunk))

    def _close(self) -> None:
        self._sink.close()
        self._con.close()


def _values_buffer(array: Any) -> memoryview | bytes:
    """The concatenated bytes of a string array without nulls."""
    if len(array) == 0:
        return b""
    offsets = array.buffers()[1]
    data = array.buffers()[2]
    width = 8 if pa.types.is_large_string(array.type) else 4
    start = int.from_bytes(memoryview(offsets)[array.offset * width:(array.offset + 1) * width], "little", signed=True)
    end_at = (array.offset + len(array)) * width
    end = int.from_bytes(memoryview(offsets)[end_at:end_at + width], "little", signed=True)
    return memoryview(data)[start:end]
