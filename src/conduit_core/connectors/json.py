"""JSON (array) and NDJSON sources via DuckDB's streaming JSON reader; NDJSON destination."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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
from conduit_core.connectors.files import expand, resume_files, skip_rows
from conduit_core.errors import DataError

JsonFormat = Literal["auto", "array", "ndjson"]
_DUCKDB_FORMAT = {"auto": "auto", "array": "array", "ndjson": "newline_delimited"}


class JsonSourceOptions(ConnectorOptions):
    path: ConfigPath = Field(description="file or glob")
    format: JsonFormat = "auto"
    sample_size: int = Field(default=20_480, ge=1, description="records sampled to infer types")


class JsonSource(BaseSource):
    """JSON documents: an array of objects, or one object per line (NDJSON)."""

    Options: ClassVar[type[JsonSourceOptions]] = JsonSourceOptions
    options: JsonSourceOptions
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
            for path, skip in resume_files(expand(self.options.path), request.resume_position):
                yield from skip_rows(self._read_file(con, path, request), skip)
        finally:
            con.close()

    def _read_file(self, con: duckdb.DuckDBPyConnection, path: Path, request: ReadRequest) -> Iterator[Batch]:
        import duckdb
        row = 0
        try:
            relation = con.read_json(str(path), format=self._format(), records="true",  # type: ignore[arg-type]
                                     sample_size=self.options.sample_size)
            for data in arrow_batches(relation, request.batch_size):
                yield Batch(data, position={"file": str(path), "row": row + data.num_rows},
                            source_file=str(path), first_row=row + 1)
                row += data.num_rows
        except duckdb.Error as exc:
            detail = str(exc).split("\n", 1)[0]
            msg = f"cannot read JSON: {detail}"
            raise DataError(msg, file=str(path),
                            hint="check the file is valid JSON (an array of objects, or one object per line)") from None


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
