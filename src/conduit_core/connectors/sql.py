"""What the embedded SQL destinations (DuckDB, SQLite) share.

A load runs in one transaction: ``append`` inserts into the table,
``full_refresh`` drops and recreates it, ``merge`` stages the rows and then
replaces rows with the same primary key (last occurrence wins). A failure
rolls back, so readers see either the old or the new contents.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import pyarrow as pa
from pydantic import model_validator

from conduit_core.batch import Batch
from conduit_core.connectors.base import (
    BaseDestination,
    Capabilities,
    ConnectorOptions,
    ReadRequest,
    WriteMode,
    WriteTarget,
)
from conduit_core.errors import ConfigError, DataError


def quote_ident(name: str, quote: str = '"') -> str:
    """Quote an identifier so any text, including quotes and SQL, stays a name."""
    return quote + name.replace(quote, quote * 2) + quote


class TableOrQueryOptions(ConnectorOptions):
    """Options of a SQL source: a table to read whole, or a query."""

    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> TableOrQueryOptions:
        if self.table and self.query:
            msg = "set either table or query, not both"
            raise ValueError(msg)
        return self


def source_sql(options: TableOrQueryOptions, request: ReadRequest, qualified_table: str | None, what: str) -> str:
    """The statement a SQL source runs: the resource's query, the source's query, or its whole table."""
    if request.query or options.query:
        return str(request.query or options.query)
    if qualified_table is None:
        msg = f"the {what} source needs `table:` or `query:` (or the resource needs `query:`)"
        raise ConfigError(msg)
    return f"SELECT * FROM {qualified_table}"


class SqlDestination(BaseDestination):
    """Template for transactional SQL destinations with a Python DB-API driver."""

    capabilities = Capabilities(transactional=True, merge=True, full_refresh=True)
    _stage_prefix = "_conduit_stage_"

    # -- driver-specific --------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _table_columns(self, table: str) -> list[str] | None:
        """Column names of ``table`` in the target schema, or None if it does not exist."""

    @abstractmethod
    def _column_types(self, schema: pa.Schema) -> list[str]:
        """SQL type of each field of ``schema``."""

    @abstractmethod
    def _insert(self, table: str, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def _qualified(self, table: str) -> str: ...

    def _temp_table_ddl(self) -> str:
        return "CREATE TEMP TABLE"

    # -- template -----------------------------------------------------------------
    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        table = target.table or target.resource
        self._table = table
        self._connect()
        self._execute("BEGIN")
        existing = self._table_columns(table)
        if target.mode is WriteMode.FULL_REFRESH and existing is not None:
            self._execute(f"DROP TABLE {self._qualified(table)}")
            existing = None
        if existing is None:
            self._create(self._qualified(table), schema, "CREATE TABLE")
        else:
            missing = [n for n in schema.names if n not in existing]
            if missing:
                self.abort()
                msg = (f"table {table!r} has no column(s) {missing}; its columns are {existing}")
                raise DataError(msg, hint="use mode: full_refresh to recreate it, or add the columns")
        self._write_table = table
        self._insert_into = self._qualified(table)
        if target.mode is WriteMode.MERGE:
            self._write_table = f"{self._stage_prefix}{target.resource}"
            self._insert_into = quote_ident(self._write_table)
            self._execute(f"DROP TABLE IF EXISTS {self._insert_into}")
            self._create(self._insert_into, schema, self._temp_table_ddl())

    def _create(self, qualified: str, schema: pa.Schema, verb: str) -> None:
        columns = ", ".join(
            f"{quote_ident(f.name)} {sql_type}" for f, sql_type in zip(schema, self._column_types(schema), strict=True)
        )
        self._execute(f"{verb} {qualified} ({columns})")

    def write_batch(self, batch: Batch) -> int:
        self._insert(self._insert_into, batch.data)
        return batch.num_rows

    def _finish_inserts(self) -> None:
        """Wait for inserts that run asynchronously (see DuckDB); raise their error."""

    def commit(self) -> None:
        self._finish_inserts()
        if self.target.mode is WriteMode.MERGE:
            self._merge()
        self._execute("COMMIT")

    def _merge(self) -> None:
        table, stage = self._qualified(self._table), quote_ident(self._write_table)
        keys = [quote_ident(k) for k in self.target.primary_key]
        match = " AND ".join(f"{table}.{k} = {stage}.{k}" for k in keys)
        cols = ", ".join(quote_ident(n) for n in self.schema.names)
        self._execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {stage} WHERE {match})")
        latest = f"SELECT max(rowid) FROM {stage} GROUP BY {', '.join(keys)}"
        self._execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} WHERE rowid IN ({latest})")
        self._execute(f"DROP TABLE {stage}")
