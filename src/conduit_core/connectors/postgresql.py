"""PostgreSQL source and destination over ADBC (binary COPY both ways, Arrow native).

The destination loads with binary ``COPY``. Appends COPY straight into the
target. Replacing or merging COPYs into a staging table, then moves the rows
with one statement: a rename (new table) or ``TRUNCATE`` + ``INSERT``
(existing table) at the end of a full_refresh, ``INSERT ... ON CONFLICT DO
UPDATE`` at every checkpoint of a merge. Each checkpoint commits the rows so far
with a row of ``_conduit_checkpoints`` in the same transaction, so the data and
the resume state can never disagree; readers see the old table or the new one,
never a half-replaced one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from urllib.parse import quote

import pyarrow as pa
from pydantic import Field, model_validator

from conduit_core.batch import Batch, iter_batches, slices
from conduit_core.connectors.arrow_pipe import BatchPipe
from conduit_core.connectors.base import (
    BaseDestination,
    BaseSource,
    Capabilities,
    ReadRequest,
    WriteMode,
    WriteTarget,
)
from conduit_core.connectors.pg_types import arrow_type_for_pg, normalize, pg_type
from conduit_core.connectors.server import ServerOptions
from conduit_core.connectors.sql import (
    CHECKPOINT_TABLE,
    TableOrQueryOptions,
    keyset_position,
    quote_ident,
    source_query,
)
from conduit_core.errors import ConduitError, ConnectionError, DataError, FatalError, MissingDriverError, StateError
from conduit_core.observe.redact import clip, redact
from conduit_core.schema.declared import not_null
from conduit_core.schema.diff import Change, ChangeKind
from conduit_core.schema.exact import refuse_finer_than
from conduit_core.schema.model import Column, TableSchema
from conduit_core.state.resume import ResumeState, state_key

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# SQLSTATEs worth redoing the unit of work for: connection failures (class 08),
# admin/crash shutdown, serialization failure and deadlock.
_RETRIABLE = ("08", "57P01", "57P02", "57P03", "40001", "40P01", "53300")


class PostgresOptions(ServerOptions):
    default_port = 5432

    sslmode: SslMode | None = None
    db_schema: str = Field(default="public", alias="schema", min_length=1)

    @model_validator(mode="after")
    def _url_dsn(self) -> PostgresOptions:
        if self.dsn is not None and not self.dsn.get_secret_value().startswith(("postgresql://", "postgres://")):
            msg = "dsn must be a URL: postgresql://user:password@host:port/database"
            raise ValueError(msg)
        return self

    def uri(self) -> str:
        """The connection URI (contains the password: never print it)."""
        if self.dsn is not None:
            base = self.dsn.get_secret_value()
        else:
            auth = quote(self.user or "", safe="")
            if self.password is not None:
                auth += ":" + quote(self.password.get_secret_value(), safe="")
            port = self.port or self.default_port
            base = f"postgresql://{auth}{'@' if auth else ''}{self.host}:{port}/{quote(self.database or '')}"
        params = [f"connect_timeout={self.connect_timeout}", "application_name=conduit"]
        if self.sslmode:
            params.append(f"sslmode={self.sslmode}")
        return base + ("&" if "?" in base else "?") + "&".join(params)


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


_TRANSIENT_TEXT = ("connection refused", "timeout expired", "server closed the connection", "connection reset",
                   "could not translate host name", "terminating connection", "no route to host", "broken pipe")


def _transient(text: str) -> bool:
    """Without a SQLSTATE (ADBC gives none on connect): network trouble is transient, a refusal
    by the server (bad password, unknown database or role) is not."""
    lowered = text.lower()
    return any(t in lowered for t in _TRANSIENT_TEXT)


def translate(exc: BaseException, what: str, options: PostgresOptions) -> ConduitError:
    """A conduit error for a driver error: retriable, data or fatal, secrets masked."""
    state = _sqlstate(exc)
    text = clip(redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                       options.secrets()))
    message = f"PostgreSQL {what} failed{f' (SQLSTATE {state})' if state else ''}: {text}"
    if state.startswith(_RETRIABLE) or (not state and _transient(text)):
        return ConnectionError(message, hint="a transient error: the load is redone as set by `retries:`")
    if state[:2] in {"22", "23"}:
        return DataError(message, hint="fix the offending values in the source")
    return FatalError(message)


def connect(options: PostgresOptions, *, autocommit: bool = False) -> Any:
    try:
        from adbc_driver_postgresql import dbapi
    except ImportError as exc:
        raise MissingDriverError("adbc-driver-postgresql", "postgres", "the PostgreSQL connector") from exc
    try:
        return dbapi.connect(options.uri(), autocommit=autocommit)
    except Exception as exc:  # noqa: BLE001 - every driver error is translated
        raise translate(exc, "connection", options) from None


class PostgresSourceOptions(PostgresOptions, TableOrQueryOptions):
    batch_size_hint_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)



class PostgresSource(BaseSource):
    """Streams a table or query with COPY ... TO STDOUT (binary) as Arrow batches."""

    Options = PostgresSourceOptions
    options: PostgresSourceOptions
    rereadable = True

    def _sql(self, request: ReadRequest) -> tuple[str, list[Any]]:
        table = self.options.table
        qualified = f"{quote_ident(self.options.db_schema)}.{quote_ident(table)}" if table else None
        return source_query(self.options, request, qualified, "PostgreSQL", placeholder=lambda n: f"${n}")

    def test_connection(self) -> bool:
        con = connect(self.options, autocommit=True)
        try:
            with con.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        except BaseException:
            con.close()
            raise
        # Kept for the read that follows preflight: a connection costs ~25 ms (the driver reads the type catalog).
        self._spare: Any = con
        return True

    def _connection(self) -> Any:
        con, self._spare = getattr(self, "_spare", None), None
        return con if con is not None else connect(self.options, autocommit=True)

    def close(self) -> None:
        con, self._spare = getattr(self, "_spare", None), None
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def estimate_total_records(self) -> int | None:
        if not self.options.table:
            return None
        con = connect(self.options, autocommit=True)
        try:
            with con.cursor() as cur:
                # The planner's estimate: free, and good enough for a progress bar.
                cur.execute("SELECT reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = $1 AND c.relname = $2", (self.options.db_schema, self.options.table))
                row = cur.fetchone()
        except Exception:  # noqa: BLE001 - an estimate is optional
            return None
        finally:
            con.close()
        return int(row[0]) if row and row[0] and row[0] > 0 else None

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        from adbc_driver_postgresql import StatementOptions

        con = self._connection()
        try:
            cur = con.cursor()
            cur.adbc_statement.set_options(
                **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(self.options.batch_size_hint_bytes)})
            try:
                sql, params = self._sql(request)
                cur.execute(sql, tuple(params) or None)
                reader = cur.fetch_record_batch()
            except Exception as exc:  # noqa: BLE001
                raise translate(exc, "query", self.options) from None
            row = 0
            for raw in iter_batches(reader, lambda exc: translate(exc, "read", self.options)):
                for data in slices(normalize(raw), request.batch_size):
                    row += data.num_rows
                    yield Batch(data, position=keyset_position(data, request), first_row=row - data.num_rows + 1)
            if row == 0:
                yield Batch(_empty(reader.schema))
        finally:
            con.close()


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    batch = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
    return normalize(batch)


class PostgresDestinationOptions(PostgresOptions):
    pass


class PostgresDestination(BaseDestination):
    """Binary COPY into a staging table, then one set-based statement, in one transaction."""

    Options = PostgresDestinationOptions
    options: PostgresDestinationOptions
    # NAMEDATALEN - 1 bytes per identifier (longer ones are cut at CREATE), 1600 columns per table.
    capabilities = Capabilities(transactional=True, merge=True, full_refresh=True, checkpoints=True,
                                max_identifier_bytes=63, max_columns=1600)

    def test_connection(self) -> bool:
        with self._unit():
            # A schema that does not exist yet is created by the load: that needs CREATE on the database.
            exists, allowed = self._run(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), CASE WHEN EXISTS "
                "(SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege($1, 'CREATE') "
                "ELSE has_database_privilege(current_database(), 'CREATE') END", (self.options.db_schema,))[0]
        if not allowed:
            schema = self.options.db_schema
            msg = (f"the PostgreSQL user may not create tables in schema {schema!r}" if exists else
                   f"schema {schema!r} does not exist, and the PostgreSQL user may not create it")
            hint = (f"GRANT CREATE ON SCHEMA {schema} TO ..., or choose another `schema:`" if exists else
                    f"CREATE SCHEMA {schema} (or GRANT CREATE ON DATABASE), or choose another `schema:`")
            raise FatalError(msg, hint=hint)
        return True

    def _open(self) -> None:
        """The destination's one connection, opened on first use and kept until :meth:`close`: connecting
        costs ~25 ms, and a load asks in turn for the state, the target's schema and the load itself."""
        if getattr(self, "_con", None) is None:
            self._con = connect(self.options)
            self._cur = self._con.cursor()

    @contextlib.contextmanager
    def _unit(self, *, commit: bool = False) -> Iterator[None]:
        """One transaction on the kept connection. A failure closes the connection (it may be broken);
        the next use opens another."""
        self._open()
        try:
            yield
            if commit:
                self._con.commit()
            else:
                self._con.rollback()
        except BaseException:
            self.close()
            raise

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            self._cur.execute(sql, params or None)
            return list(self._cur.fetchall()) if self._cur.description else []
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, "statement", self.options) from None

    def _qualified(self, table: str) -> str:
        return f"{quote_ident(self.options.db_schema)}.{quote_ident(table)}"

    def _columns(self, table: str) -> list[str] | None:
        rows = self._run("SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                         "AND table_name = $2 ORDER BY ordinal_position", (self.options.db_schema, table))
        return [r[0] for r in rows] or None

    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        self._table = target.table or target.resource
        self._open()
        self._pipe: BatchPipe | None = None
        self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.options.db_schema)}")
        existing = self._columns(self._table)
        if existing is None and target.mode is not WriteMode.FULL_REFRESH:
            self._create(self._qualified(self._table), schema, target)
        elif existing is not None:
            missing = [n for n in schema.names if n not in existing]
            if missing:
                msg = f"table {self._table!r} has no column(s) {missing}; its columns are {existing}"
                raise DataError(msg, hint="add the columns to the table (ALTER TABLE ... ADD COLUMN), or drop it")
            if target.mode is WriteMode.MERGE:
                self._check_key(target)
        # Appends COPY straight into the target: nobody sees the rows before COMMIT. Replacing or
        # merging goes through a staging table, so the old rows stay readable until the end, and it
        # survives checkpoints: a resumed load finds its staging table by the name in its state.
        self._stage: str | None = None
        if target.mode is not WriteMode.APPEND:
            resumed = target.resume.stage if target.resume is not None else None
            self._stage = resumed or f"_conduit_stage_{uuid.uuid4().hex[:16]}"
            if resumed is None:
                self._create(self._qualified(self._stage), schema, None)
            elif self._columns(resumed) is None:
                msg = f"the staging table {resumed!r} of the checkpointed load is gone"
                raise StateError(msg, hint=f"`conduit state reset {target.resource}` and run again")

    def _loader(self) -> BatchPipe:
        if self._pipe is None:
            stage, db_schema = self._stage or self._table, self.options.db_schema

            def load(reader: pa.RecordBatchReader) -> None:
                self._cur.adbc_ingest(stage, reader, mode="append", db_schema_name=db_schema)

            self._pipe = BatchPipe(self.schema, load)
        return self._pipe

    def _create(self, qualified: str, schema: pa.Schema, target: WriteTarget | None) -> None:
        columns = [f"{quote_ident(f.name)} {pg_type(f.type, f.name)}{' NOT NULL' if not_null(f) else ''}"
                   for f in schema]
        if target is not None and target.mode is WriteMode.MERGE:
            columns.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in target.primary_key)})")
        self._run(f"CREATE TABLE {qualified} ({', '.join(columns)})")

    def _check_key(self, target: WriteTarget) -> None:
        rows = self._run(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = ($1 || '.' || $2)::regclass AND i.indisunique GROUP BY i.indexrelid",
            (quote_ident(self.options.db_schema), quote_ident(self._table)))
        wanted = sorted(target.primary_key)
        if not any(sorted(r[0]) == wanted for r in rows if r[0]):
            msg = (f"merge needs a primary key or unique index on {list(target.primary_key)} "
                   f"of table {self._table!r}")
            raise DataError(msg, hint=f"ALTER TABLE ... ADD PRIMARY KEY ({', '.join(target.primary_key)})")

    def write_batch(self, batch: Batch) -> int:
        refuse_finer_than(batch.data, "us", batch.first_row, "PostgreSQL")
        try:
            self._loader().put(batch.data)
        except ConduitError:
            raise
        except Exception as exc:  # noqa: BLE001 - the COPY failed in the loader thread
            raise translate(exc, "COPY", self.options) from None
        return batch.num_rows

    def _finish_copy(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            try:
                pipe.close()
            except ConduitError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise translate(exc, "COPY", self.options) from None

    def commit(self) -> None:
        self._publish(None, final=True)

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        state.stage = None if final else self._stage
        self._publish(state, final=final)

    def _publish(self, state: ResumeState | None, *, final: bool) -> None:
        self._finish_copy()
        if self.target.mode is WriteMode.MERGE:
            self._merge_stage(drop=final)
        elif final and self.target.mode is WriteMode.FULL_REFRESH:
            self._replace_from_stage()
        if state is not None:
            self._save_state(state)
        try:
            self._con.commit()
        except Exception as exc:  # noqa: BLE001
            error = translate(exc, "commit", self.options)
            if state is not None:
                # The state row commits with the data, so a retry reads it back and knows.
                msg = f"{error.message}; the retry checks the committed checkpoint before going on"
                raise ConnectionError(msg, hint=error.hint) from None
            # The server may or may not have committed: redoing the load could double it.
            msg = f"{error.message}; the outcome of the commit is unknown, so the load is not retried"
            raise FatalError(msg, hint=f"check table {self._table!r} before running again") from None

    def _merge_stage(self, *, drop: bool) -> None:
        assert self._stage is not None
        table, stage = self._qualified(self._table), self._qualified(self._stage)
        cols = ", ".join(quote_ident(n) for n in self.schema.names)
        keys = ", ".join(quote_ident(k) for k in self.target.primary_key)
        updates = [f"{quote_ident(n)} = EXCLUDED.{quote_ident(n)}" for n in self.schema.names
                   if n not in self.target.primary_key]
        action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
        # The last occurrence of a key wins: ctid follows insertion order in a stage emptied by TRUNCATE.
        self._run(f"INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {stage} "
                  f"ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) {action}")
        self._run(f"DROP TABLE {stage}" if drop else f"TRUNCATE {stage}")

    def _replace_from_stage(self) -> None:
        assert self._stage is not None
        table, stage = self._qualified(self._table), self._qualified(self._stage)
        if self._columns(self._table) is None:
            self._run(f"ALTER TABLE {stage} RENAME TO {quote_ident(self._table)}")
            return
        # An existing table keeps its identity (grants, views, indexes): its rows are replaced.
        cols = ", ".join(quote_ident(n) for n in self.schema.names)
        self._run(f"TRUNCATE {table}")
        self._run(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}")
        self._run(f"DROP TABLE {stage}")

    # -- schema -------------------------------------------------------------------------
    def _describe(self, table: str) -> TableSchema | None:
        # By name through the catalog: to_regclass() raises for a schema that does not exist yet.
        rows = self._run("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull "
                         "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 "
                         "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (self.options.db_schema, table))
        if not rows:
            return None
        return TableSchema(tuple(Column(name, arrow_type_for_pg(native), not notnull, native)
                                 for name, native, notnull in rows))

    def table_schema(self, target: WriteTarget) -> TableSchema | None:
        with self._unit():
            return self._describe(target.table or target.resource)

    def evolve(self, target: WriteTarget, changes: Sequence[Change]) -> list[str]:
        table = self._qualified(target.table or target.resource)
        statements = []
        for change in changes:
            assert change.target is not None
            column = quote_ident(change.column)
            sql_type = pg_type(change.target.type or pa.string(), change.column)
            if change.kind is ChangeKind.ADDED:
                statements.append(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
            elif change.kind is ChangeKind.TYPE:
                statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type} "
                                  f"USING {column}::{sql_type}")
            else:
                statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
        with self._unit(commit=True):  # one transaction: all of the changes or none
            for sql in statements:
                self._run(sql)
        return statements

    # -- checkpoint state -------------------------------------------------------------
    def _state_table(self) -> str:
        return self._qualified(CHECKPOINT_TABLE)

    def target_id(self, target: WriteTarget) -> str:
        return f"{self.options.db_schema}.{target.table or target.resource}"

    def _save_state(self, state: ResumeState) -> None:
        # Two first loads into one schema could race to create the table: serialise them.
        self._run("SELECT pg_advisory_xact_lock(hashtext($1))", (f"conduit:{self.options.db_schema}",))
        self._run(f"CREATE TABLE IF NOT EXISTS {self._state_table()} (resource text PRIMARY KEY, "
                  "state text NOT NULL, updated_at text NOT NULL)")
        self._run(f"INSERT INTO {self._state_table()} VALUES ($1, $2, $3) ON CONFLICT (resource) DO UPDATE "
                  "SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                  (state_key(self.target.resource, self.target_id(self.target)), state.to_json(), state.updated_at))

    def _state_rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._unit(commit=True):
            if self._columns(CHECKPOINT_TABLE) is None:
                return []
            return self._run(sql, params)

    def _keys(self, target: WriteTarget) -> tuple[str, str]:
        """The target's own key, and the bare resource name an earlier conduit filed states under."""
        return state_key(target.resource, self.target_id(target)), target.resource

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        own, legacy = self._keys(target)
        rows = self._state_rows(f"SELECT state FROM {self._state_table()} WHERE resource IN ($1, $2) "
                                "ORDER BY resource = $1 DESC", (own, legacy))
        return ResumeState.from_json(rows[0][0]) if rows else None

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        if state.stage:
            self._state_rows(f"DROP TABLE IF EXISTS {self._qualified(state.stage)}", ())
        self._state_rows(f"DELETE FROM {self._state_table()} WHERE resource IN ($1, $2)", self._keys(target))

    def abort(self) -> None:
        pipe, self._pipe = getattr(self, "_pipe", None), None
        if pipe is not None:
            pipe.abort()
        con = getattr(self, "_con", None)
        if con is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone
                con.rollback()

    def close(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            with contextlib.suppress(Exception):  # closing a broken connection must not mask the outcome
                self._cur.close()
                con.close()
            self._con = None

    release = close
