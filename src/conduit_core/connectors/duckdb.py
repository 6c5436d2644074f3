"""DuckDB, the embedded default: source (table or query) and destination."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import Field, field_validator

if TYPE_CHECKING:
    import duckdb

from conduit_core.batch import Batch, iter_batches
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.arrow_pipe import BatchPipe
from conduit_core.connectors.base import BaseSource, ConnectorOptions, ReadRequest
from conduit_core.connectors.files import check_writable
from conduit_core.connectors.sql import SqlDestination, TableOrQueryOptions, keyset_position, quote_ident, source_query
from conduit_core.errors import ConfigError, DataError, FatalError
from conduit_core.schema.model import Column, TableSchema

_LOCK = threading.Lock()
# DuckDB keeps the blocks a load writes in its buffer pool up to its memory limit (80% of RAM by default), so a
# load's memory grew with its rows (~100 MB per million rows of the benchmark table) without bound. A limit that
# binds costs time (5M benchmark rows: 4.5 s unbounded and with 512MB, 5.4 s with 256MB, 5.6 s with 128MB).
DEFAULT_MEMORY_LIMIT = "512MB"
_MEMORY = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|%)", re.IGNORECASE)


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database, turning lock and I/O errors into readable ones."""
    import duckdb

    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with _LOCK:
            return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        msg = f"cannot open DuckDB database {path}: {exc}"
        raise FatalError(msg, hint="is another process holding the file open?") from exc


def arrow_batches(relation: duckdb.DuckDBPyRelation, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Stream a relation as record batches (DuckDB's streaming result, bounded memory)."""
    return iter_batches(relation.to_arrow_reader(batch_size))


def _view_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in schema])


def _as_views(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Strings as string_view, which DuckDB ingests without re-copying each value (~25% faster loads)."""
    if not any(pa.types.is_string(t) for t in batch.schema.types):
        return batch
    return batch.cast(_view_schema(batch.schema))


class DuckDBSourceOptions(TableOrQueryOptions):
    path: ConfigPath = Field(description="database file")
    db_schema: str = Field(default="main", alias="schema")



def _qualified(schema: str, table: str | None) -> str | None:
    return f"{quote_ident(schema)}.{quote_ident(table)}" if table else None


class DuckDBSource(BaseSource):
    """Reads a DuckDB table or query as Arrow batches."""

    Options = DuckDBSourceOptions
    options: DuckDBSourceOptions
    rereadable = True

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if not self.options.path.exists():
            msg = f"DuckDB database {self.options.path} does not exist"
            raise ConfigError(msg, hint="check `path:` on the source")
        return connect(self.options.path, read_only=True)

    def test_connection(self) -> bool:
        self._connection().close()
        return True

    def estimate_total_records(self) -> int | None:
        if self.options.table is None:
            return None
        with self._connection() as con:
            sql = f"SELECT * FROM {_qualified(self.options.db_schema, self.options.table)}"
            row = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        return int(row[0]) if row else None

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        import duckdb

        sql, params = source_query(self.options, request, _qualified(self.options.db_schema, self.options.table),
                                   "DuckDB", placeholder=lambda _: "?")
        con = self._connection()
        try:
            try:
                relation = con.sql(sql, params=params or None)
            except duckdb.Error as exc:
                msg = f"DuckDB query failed: {exc}"
                raise DataError(msg, hint="check `table:`/`query:`") from exc
            row = 0
            for data in arrow_batches(relation, request.batch_size):
                row += data.num_rows
                yield Batch(data, position=keyset_position(data, request), first_row=row - data.num_rows + 1)
        finally:
            con.close()


class DuckDBDestinationOptions(ConnectorOptions):
    path: ConfigPath = Field(description="database file; created if missing")
    db_schema: str = Field(default="main", alias="schema")
    memory_limit: str | None = Field(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory_limit while loading (e.g. 512MB, 2GiB); null: DuckDB's default, 80% of RAM")

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not _MEMORY.fullmatch(value.strip()):
            msg = f"memory_limit must be a size with its unit, such as 128MB, 512MiB or 2GB (got {value!r})"
            raise ValueError(msg)
        return value.strip() if value is not None else None


class DuckDBDestination(SqlDestination):
    """Writes tables into a DuckDB database file in one transaction per load."""

    Options = DuckDBDestinationOptions
    options: DuckDBDestinationOptions

    def test_connection(self) -> bool:
        check_writable(self.options.path)
        return True

    def _connect(self) -> None:
        self._con = connect(self.options.path)
        if self.options.memory_limit is not None:
            # For the database instance (every connection to the file in this process), not the connection.
            self._con.execute(f"SET memory_limit = '{self.options.memory_limit}'")
        if self.options.db_schema != "main":
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.options.db_schema)}")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self._con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            msg = f"DuckDB statement failed: {exc}"
            raise DataError(msg) from exc

    def _qualified(self, table: str) -> str:
        return f"{quote_ident(self.options.db_schema)}.{quote_ident(table)}"

    def _schema_name(self) -> str:
        return self.options.db_schema

    def _table_columns(self, table: str) -> list[str] | None:
        rows = self._execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", (self.options.db_schema, table))
        return [r[0] for r in rows] or None

    def _column_types(self, schema: pa.Schema) -> list[str]:
        # DuckDB's own Arrow mapping is the documented one; ask it instead of restating it.
        self._con.register("_conduit_empty", pa.table({f.name: pa.array([], f.type) for f in schema}))
        try:
            described = self._con.execute("DESCRIBE SELECT * FROM _conduit_empty").fetchall()
        finally:
            self._con.unregister("_conduit_empty")
        return [str(row[1]) for row in described]

    def _insert(self, table: str, batch: pa.RecordBatch) -> None:
        # One INSERT scans the whole stream: per-batch statements are slower and
        # make DuckDB hold more of the open transaction in memory.
        if getattr(self, "_pipe", None) is None:
            schema = _view_schema(batch.schema)
            cols = ", ".join(quote_ident(n) for n in schema.names)

            def load(reader: pa.RecordBatchReader) -> None:
                self._con.register("_conduit_stream", reader)
                try:
                    self._con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _conduit_stream")
                finally:
                    self._con.unregister("_conduit_stream")

            self._pipe: BatchPipe | None = BatchPipe(schema, load)
        assert self._pipe is not None
        self._pipe.put(_as_views(batch))

    def _finish_inserts(self) -> None:
        import duckdb

        pipe, self._pipe = getattr(self, "_pipe", None), None
        if pipe is None:
            return
        try:
            pipe.close()
        except duckdb.Error as exc:
            msg = f"DuckDB insert into {self._table!r} failed: {exc}"
            raise DataError(msg) from exc

    def get_table_schema(self) -> dict[str, Any] | None:
        table = getattr(self, "_table", None)
        if table is None:
            return None
        rows = self._execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            (self.options.db_schema, table))
        return {r[0]: r[1] for r in rows} or None

    def execute_ddl(self, sql: str) -> None:
        self._execute(sql)

    def abort(self) -> None:
        import duckdb

        pipe, self._pipe = getattr(self, "_pipe", None), None
        if pipe is not None:
            pipe.abort()
        con = getattr(self, "_con", None)
        if con is None:
            return
        with contextlib.suppress(duckdb.Error):  # nothing open to roll back
            con.execute("ROLLBACK")

    def _live_schema(self, table: str) -> TableSchema | None:
        rows = self._execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ? ORDER BY ordinal_position", (self.options.db_schema, table))
        if not rows:
            return None
        # DuckDB's own Arrow mapping gives the types exactly as a load would produce them.
        arrow = self._con.sql(f"SELECT * FROM {self._qualified(table)} LIMIT 0").to_arrow_table().schema
        return TableSchema(tuple(Column(name, arrow.field(name).type, nullable == "YES", str(native))
                                 for name, native, nullable in rows))

    def _database_exists(self) -> bool:
        return self.options.path.exists()

    def close(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
            self._con = None  # type: ignore[assignment]
