"""What the embedded SQL destinations (DuckDB, SQLite) share.

A load runs in one transaction: ``append`` inserts into the table,
``full_refresh`` drops and recreates it, ``merge`` stages the rows and then
replaces rows with the same primary key (last occurrence wins). A failure
rolls back, so readers see either the old or the new contents.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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
from conduit_core.errors import ConfigError, DataError, StateError
from conduit_core.schema.declared import not_null
from conduit_core.schema.diff import Change, ChangeKind
from conduit_core.schema.model import TableSchema
from conduit_core.state.resume import ResumeState, state_key
from conduit_core.state.values import decode_value, encode_value


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


CHECKPOINT_TABLE = "_conduit_checkpoints"


def source_query(options: TableOrQueryOptions, request: ReadRequest, qualified_table: str | None, what: str, *,
                 placeholder: Callable[[int], str], quote: Callable[[str], str] = quote_ident,
                 ) -> tuple[str, list[Any]]:
    """The source statement with the incremental bound and the keyset resume point as bound
    parameters (never spliced into the SQL text), ordered by the checkpoint column."""
    base = source_sql(options, request, qualified_table, what)
    conditions: list[str] = []
    params: list[Any] = []
    if request.after is not None:
        column, value = request.after
        params.append(value.as_py())
        conditions.append(f"{quote(column)} > {placeholder(len(params))}")
    key = request.checkpoint_column
    if key and request.resume_position is not None:
        params.append(decode_value(request.resume_position["after"]).as_py())
        conditions.append(f"{quote(key)} > {placeholder(len(params))}")
    if not conditions and not key:
        return base, params
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = f" ORDER BY {quote(key)}" if key else ""
    return f"SELECT * FROM ({base}) AS _conduit_source{where}{order}", params


def keyset_position(data: pa.RecordBatch, request: ReadRequest) -> dict[str, Any] | None:
    """Where to resume after ``data`` (ordered by the checkpoint column): after its last key."""
    key = request.checkpoint_column
    if key is None or not data.num_rows:
        return None
    if key not in data.schema.names:
        msg = f"checkpoint_column {key!r} is not in the data; columns: {data.schema.names}"
        raise ConfigError(msg, hint="set checkpoint_column to a unique, non-null column such as the primary key")
    column = data.column(key)
    if column.null_count:
        msg = f"checkpoint_column {key!r} has NULL values, so it cannot mark where to resume"
        raise DataError(msg, column=key, hint="choose a unique, non-null column such as the primary key")
    return {"column": key, "after": encode_value(pc.max(column))}


class SqlDestination(BaseDestination):
    """Template for transactional SQL destinations with a Python DB-API driver.

    Checkpoints commit the rows written so far and a row of ``_conduit_checkpoints``
    in one transaction. ``full_refresh`` loads into a persistent staging table that
    replaces the target only at the end, so checkpoints never expose a half-loaded
    table; ``merge`` merges the staged rows into the target at each checkpoint.
    """

    capabilities = Capabilities(transactional=True, merge=True, full_refresh=True, checkpoints=True,
                                case_insensitive_names=True)
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

    def _open(self) -> None:
        """The destination's one connection, opened on first use and kept until :meth:`close`: a load asks in
        turn for the state, the target's schema and the load itself, and each connect costs ~10 ms."""
        if getattr(self, "_con", None) is None:
            self._connect()

    def release(self) -> None:
        self.close()

    # -- template -----------------------------------------------------------------
    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        table = target.table or target.resource
        self._table = table
        self._open()
        self._execute("BEGIN")
        self._write_table = table
        if target.mode is WriteMode.FULL_REFRESH:
            # Rows go to a staging table that replaces the target at the end: until then the
            # old table stays whole, through any number of checkpoints. Its name is the load's own (kept in
            # the state), so two loads into one database never share one.
            self._write_table = self._stage_name(target)
            if target.resume is None:
                self._execute(f"DROP TABLE IF EXISTS {self._qualified(self._write_table)}")
                self._create(self._qualified(self._write_table), schema, "CREATE TABLE")
            elif self._table_columns(self._write_table) is None:
                self.abort()
                msg = f"the staging table {self._write_table!r} of the checkpointed load is gone"
                raise StateError(msg, hint=f"`conduit state reset {target.resource}` and run again")
        else:
            existing = self._table_columns(table)
            if existing is None:
                self._create(self._qualified(table), schema, "CREATE TABLE")
            else:
                missing = [n for n in schema.names if n not in existing]
                if missing:
                    self.abort()
                    msg = (f"table {table!r} has no column(s) {missing}; its columns are {existing}")
                    raise DataError(msg, hint="use mode: full_refresh to recreate it, or add the columns")
        self._insert_into = self._qualified(self._write_table)
        if target.mode is WriteMode.MERGE:
            self._write_table = f"{self._stage_prefix}{target.resource}"
            self._insert_into = quote_ident(self._write_table)
            self._execute(f"DROP TABLE IF EXISTS {self._insert_into}")
            self._create(self._insert_into, schema, self._temp_table_ddl())

    def _create(self, qualified: str, schema: pa.Schema, verb: str) -> None:
        columns = ", ".join(
            f"{quote_ident(f.name)} {sql_type}{' NOT NULL' if not_null(f) else ''}"
            for f, sql_type in zip(schema, self._column_types(schema), strict=True)
        )
        self._execute(f"{verb} {qualified} ({columns})")

    def write_batch(self, batch: Batch) -> int:
        self._insert(self._insert_into, batch.data)
        return batch.num_rows

    def _finish_inserts(self) -> None:
        """Wait for inserts that run asynchronously (see DuckDB); raise their error."""

    def _stage_name(self, target: WriteTarget) -> str:
        if target.resume is not None:  # the resumed load's stage (states of an earlier conduit: by resource)
            return target.resume.stage or f"{self._stage_prefix}{target.resource}"
        return f"{self._stage_prefix}{uuid.uuid4().hex[:16]}"

    def commit(self) -> None:
        self._publish(None, final=True)

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        staged = self.target.mode is WriteMode.FULL_REFRESH and not final
        state.stage = self._write_table if staged else None
        self._publish(state, final=final)

    def _publish(self, state: ResumeState | None, *, final: bool) -> None:
        self._finish_inserts()
        if self.target.mode is WriteMode.MERGE:
            self._merge(drop=final)
        if final and self.target.mode is WriteMode.FULL_REFRESH:
            self._execute(f"DROP TABLE IF EXISTS {self._qualified(self._table)}")
            self._execute(f"ALTER TABLE {self._qualified(self._write_table)} RENAME TO {quote_ident(self._table)}")
        if state is not None:
            self._save_state(state)
        self._execute("COMMIT")
        if not final:
            self._execute("BEGIN")

    def _merge(self, *, drop: bool) -> None:
        table, stage = self._qualified(self._table), quote_ident(self._write_table)
        keys = [quote_ident(k) for k in self.target.primary_key]
        match = " AND ".join(f"{table}.{k} = {stage}.{k}" for k in keys)
        cols = ", ".join(quote_ident(n) for n in self.schema.names)
        self._execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {stage} WHERE {match})")
        latest = f"SELECT max(rowid) FROM {stage} GROUP BY {', '.join(keys)}"
        self._execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} WHERE rowid IN ({latest})")
        self._execute(f"DROP TABLE {stage}" if drop else f"DELETE FROM {stage}")

    # -- checkpoint state ---------------------------------------------------------------
    @abstractmethod
    def _schema_name(self) -> str:
        """The schema tables are created in (part of every target's name)."""

    def target_id(self, target: WriteTarget) -> str:
        return f"{self._schema_name()}.{target.table or target.resource}"

    def _save_state(self, state: ResumeState) -> None:
        table = self._qualified(CHECKPOINT_TABLE)
        key = state_key(self.target.resource, self.target_id(self.target))
        self._execute(f"CREATE TABLE IF NOT EXISTS {table} (resource TEXT PRIMARY KEY, state TEXT NOT NULL, "
                      "updated_at TEXT NOT NULL)")
        self._execute(f"DELETE FROM {table} WHERE resource = ?", (key,))
        self._execute(f"INSERT INTO {table} VALUES (?, ?, ?)", (key, state.to_json(), state.updated_at))

    def _state_rows(self, target: WriteTarget) -> list[tuple[Any, ...]]:
        """The rows of ``_conduit_checkpoints`` for ``target``: its own, or one an earlier conduit filed under
        the bare resource name (which :func:`check_owner` then refuses)."""
        if self._table_columns(CHECKPOINT_TABLE) is None:
            return []
        keys = (state_key(target.resource, self.target_id(target)), target.resource)
        return self._execute(f"SELECT resource, state FROM {self._qualified(CHECKPOINT_TABLE)} WHERE resource IN "
                             "(?, ?) ORDER BY resource = ? DESC", (*keys, keys[0]))

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        if not self._database_exists():
            return None
        self._open()
        rows = self._state_rows(target)
        return ResumeState.from_json(rows[0][1]) if rows else None

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        self._open()
        try:
            self._execute("BEGIN")
            stage = state.stage or self._stage_prefix + target.resource
            self._execute(f"DROP TABLE IF EXISTS {self._qualified(stage)}")
            for key, _ in self._state_rows(target):
                self._execute(f"DELETE FROM {self._qualified(CHECKPOINT_TABLE)} WHERE resource = ?", (key,))
            self._execute("COMMIT")
        except BaseException:
            self.abort()
            raise

    def _database_exists(self) -> bool:
        """False when there is no database yet (reading state must not create one)."""
        return True

    # -- schema ---------------------------------------------------------------------------
    @abstractmethod
    def _live_schema(self, table: str) -> TableSchema | None:
        """The table's columns with Arrow types (None where unknown), on the open connection."""

    def _alter(self, table: str, change: Change) -> list[str]:
        """Statements that apply one change (``ALTER TABLE``; SQLite overrides to rebuild the table)."""
        assert change.target is not None
        qualified, column = self._qualified(table), quote_ident(change.column)
        sql_type = self._column_types(pa.schema([pa.field(change.column, change.target.type or pa.string())]))[0]
        if change.kind is ChangeKind.ADDED:
            return [f"ALTER TABLE {qualified} ADD COLUMN {column} {sql_type}"]
        if change.kind is ChangeKind.TYPE:
            return [f"ALTER TABLE {qualified} ALTER COLUMN {column} SET DATA TYPE {sql_type}"]
        return [f"ALTER TABLE {qualified} ALTER COLUMN {column} DROP NOT NULL"]

    def table_schema(self, target: WriteTarget) -> TableSchema | None:
        if not self._database_exists():
            return None
        self._open()
        return self._live_schema(target.table or target.resource)

    def evolve(self, target: WriteTarget, changes: Sequence[Change]) -> list[str]:
        table = target.table or target.resource
        self._open()
        statements: list[str] = []
        try:
            self._execute("BEGIN")
            for change in changes:
                for sql in self._alter(table, change):
                    self._execute(sql)
                    statements.append(sql)
            self._execute("COMMIT")
        except BaseException:
            self.abort()
            raise
        return statements
