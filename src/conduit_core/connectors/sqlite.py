"""SQLite source (table or query) and destination (stdlib ``sqlite3``).

Type mapping (destination): integers -> INTEGER, floats -> REAL, booleans ->
BOOLEAN (0/1), strings -> TEXT, binary -> BLOB, dates -> DATE and timestamps ->
TIMESTAMP (ISO-8601 text; time-zone-aware ones as UTC in TIMESTAMPTZ),
decimal(p,s) -> DECIMAL_TEXT(p,s) (text affinity, so no digit is lost to
SQLite's floating-point NUMERIC affinity). The source maps those declared
types back.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from conduit_core.batch import Batch
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import BaseSource, ConnectorOptions, ReadRequest
from conduit_core.connectors.dbapi import rows_to_batch
from conduit_core.connectors.files import check_writable
from conduit_core.connectors.sql import SqlDestination, TableOrQueryOptions, keyset_position, quote_ident, source_query
from conduit_core.errors import ConfigError, DataError, FatalError
from conduit_core.schema.diff import Change, ChangeKind
from conduit_core.schema.model import Column, TableSchema

_DECIMAL = re.compile(r"DECIMAL_TEXT\((\d+),\s*(\d+)\)", re.IGNORECASE)


def _connect(path: Any, *, read_only: bool = False) -> sqlite3.Connection:
    target = f"{Path(path).resolve().as_uri()}?mode=ro" if read_only else str(path)
    try:
        con = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=read_only)
    except sqlite3.Error as exc:
        msg = f"cannot open SQLite database {path}: {exc}"
        raise FatalError(msg) from exc
    con.execute("PRAGMA busy_timeout = 10000")
    return con


def arrow_type_for(declared: str | None) -> pa.DataType | None:
    """Arrow type for a declared SQLite column type (None: infer from values)."""
    text = (declared or "").upper()
    if match := _DECIMAL.fullmatch(text):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if "INT" in text:
        return pa.int64()
    if text in {"REAL", "DOUBLE", "FLOAT"}:
        return pa.float64()
    if text.startswith("BOOL"):
        return pa.bool_()
    if text == "DATE":
        return pa.date32()
    if text == "TIMESTAMPTZ":
        return pa.timestamp("us", "UTC")
    if text.startswith(("TIMESTAMP", "DATETIME")):
        return pa.timestamp("us")
    if "CHAR" in text or "TEXT" in text or "CLOB" in text:
        return pa.string()
    if text == "BLOB":
        return pa.binary()
    return None


class SQLiteSourceOptions(TableOrQueryOptions):
    path: ConfigPath



class SQLiteSource(BaseSource):
    """Reads a SQLite table or query."""

    Options = SQLiteSourceOptions
    options: SQLiteSourceOptions
    rereadable = True

    def _connection(self) -> sqlite3.Connection:
        if not self.options.path.exists():
            msg = f"SQLite database {self.options.path} does not exist"
            raise ConfigError(msg, hint="check `path:` on the source")
        return _connect(self.options.path, read_only=True)

    def test_connection(self) -> bool:
        self._connection().close()
        return True

    def _sql(self, request: ReadRequest) -> tuple[str, list[Any]]:
        table = quote_ident(self.options.table) if self.options.table else None
        return source_query(self.options, request, table, "SQLite", placeholder=lambda _: "?")

    def estimate_total_records(self) -> int | None:
        if not self.options.table:
            return None
        with self._connection() as con:
            return int(con.execute(f"SELECT count(*) FROM {quote_ident(self.options.table)}").fetchone()[0])

    def _declared(self, con: sqlite3.Connection, names: list[str], request: ReadRequest) -> list[pa.DataType | None]:
        if not self.options.table or request.query or self.options.query:
            return [None] * len(names)
        info = {r[1]: r[2] for r in con.execute(f"PRAGMA table_info({quote_ident(self.options.table)})")}
        return [arrow_type_for(info.get(n)) for n in names]

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        con = self._connection()
        try:
            try:
                cursor = con.execute(*self._sql(request))
            except sqlite3.Error as exc:
                msg = f"SQLite query failed: {exc}"
                raise DataError(msg, hint="check `table:`/`query:`") from exc
            names = [d[0] for d in cursor.description]
            declared = self._declared(con, names, request)
            schema: pa.Schema | None = None
            row = 0
            while rows := cursor.fetchmany(request.batch_size):
                data = rows_to_batch(rows, names, declared, schema, row + 1)
                schema = data.schema
                row += data.num_rows
                yield Batch(data, position=keyset_position(data, request), first_row=row - data.num_rows + 1)
        finally:
            con.close()


class SQLiteDestinationOptions(ConnectorOptions):
    path: ConfigPath = Field(description="database file; created if missing")


def _sqlite_type(field: pa.Field) -> str:
    t = field.type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "INTEGER"
    if pa.types.is_floating(t):
        return "REAL"
    if pa.types.is_decimal(t):
        return f"DECIMAL_TEXT({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BLOB"
    return "TEXT"


def _python_columns(batch: pa.RecordBatch) -> list[list[Any]]:
    """Columns as Python lists sqlite3 can bind (temporal and decimal as ISO text)."""
    columns = []
    for column in batch.columns:
        t = column.type
        array = column
        if pa.types.is_timestamp(t) and t.tz:
            array = pc.cast(pc.cast(column, pa.timestamp(t.unit, "UTC")), pa.string())
        elif pa.types.is_decimal(t) or pa.types.is_temporal(t) or pa.types.is_dictionary(t):
            array = pc.cast(column, pa.string())
        elif pa.types.is_boolean(t):
            array = pc.cast(column, pa.int8())
        elif pa.types.is_nested(t):
            array = _to_json(column)
        columns.append(array.to_pylist())
    return columns


def _to_json(array: pa.Array) -> pa.Array:
    import duckdb

    con = duckdb.connect()
    con.register("_nested", pa.table({"v": array}))
    table: pa.Table = con.sql("SELECT to_json(v)::VARCHAR AS v FROM _nested").to_arrow_table()
    return table.column("v")


class SQLiteDestination(SqlDestination):
    """Writes tables into a SQLite database file in one transaction per load."""

    Options = SQLiteDestinationOptions
    options: SQLiteDestinationOptions
    # SQLITE_MAX_COLUMN in a default build.
    capabilities = replace(SqlDestination.capabilities, max_columns=2000)

    def test_connection(self) -> bool:
        check_writable(self.options.path)
        return True

    def _connect(self) -> None:
        self.options.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = _connect(self.options.path)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            msg = f"SQLite statement failed: {exc}"
            raise DataError(msg) from exc

    def _qualified(self, table: str) -> str:
        return quote_ident(table)

    def _schema_name(self) -> str:
        return "main"

    def _table_columns(self, table: str) -> list[str] | None:
        rows = self._execute(f"PRAGMA table_info({quote_ident(table)})")
        return [r[1] for r in rows] or None

    def _column_types(self, schema: pa.Schema) -> list[str]:
        return [_sqlite_type(f) for f in schema]

    def _insert(self, table: str, batch: pa.RecordBatch) -> None:
        cols = ", ".join(quote_ident(n) for n in batch.schema.names)
        marks = ", ".join("?" * batch.num_columns)
        try:
            self._con.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                  zip(*_python_columns(batch), strict=True))
        except sqlite3.Error as exc:
            msg = f"SQLite insert into {table} failed: {exc}"
            raise DataError(msg) from exc

    def get_table_schema(self) -> dict[str, Any] | None:
        table = getattr(self, "_table", None)
        if table is None:
            return None
        return {r[1]: r[2] for r in self._execute(f"PRAGMA table_info({quote_ident(table)})")} or None

    def execute_ddl(self, sql: str) -> None:
        self._execute(sql)

    def abort(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None and con.in_transaction:
            con.execute("ROLLBACK")

    def _live_schema(self, table: str) -> TableSchema | None:
        rows = self._execute(f"PRAGMA table_info({quote_ident(table)})")
        if not rows:
            return None
        return TableSchema(tuple(Column(r[1], arrow_type_for(r[2]), not r[3], r[2]) for r in rows))

    def _alter(self, table: str, change: Change) -> list[str]:
        if change.kind is ChangeKind.ADDED:
            return super()._alter(table, change)
        # SQLite cannot change a column's type or constraint: the table is rebuilt in the transaction.
        assert change.target is not None
        info = self._execute(f"PRAGMA table_info({quote_ident(table)})")
        columns = []
        for _, name, declared, notnull, default, _pk in info:
            changed = name == change.column
            retype = changed and change.kind is ChangeKind.TYPE
            sql_type = _sqlite_type(pa.field(name, change.target.type or pa.string())) if retype else declared
            required = notnull and not (changed and change.kind is ChangeKind.NULLABILITY)
            columns.append(f"{quote_ident(name)} {sql_type}{' NOT NULL' if required else ''}"
                           f"{f' DEFAULT {default}' if default is not None else ''}")
        names = ", ".join(quote_ident(r[1]) for r in info)
        rebuilt = quote_ident(f"_conduit_rebuild_{table}")
        return [f"CREATE TABLE {rebuilt} ({', '.join(columns)})",
                f"INSERT INTO {rebuilt} ({names}) SELECT {names} FROM {quote_ident(table)}",
                f"DROP TABLE {quote_ident(table)}",
                f"ALTER TABLE {rebuilt} RENAME TO {quote_ident(table)}"]

    def _database_exists(self) -> bool:
        return self.options.path.exists()

    def close(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
            self._con = None  # type: ignore[assignment]
