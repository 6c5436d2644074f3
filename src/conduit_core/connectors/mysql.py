"""MySQL / MariaDB source (mysqlclient, unbuffered) and destination (pymysql, LOAD DATA LOCAL INFILE).

Each batch is rendered to a CSV file by DuckDB (every value quoted, NULL as
the bare word NULL, which LOAD DATA reads as NULL) and loaded with
``LOAD DATA LOCAL INFILE``. With LOCAL the server downgrades bad values to
warnings and keeps going (it would silently truncate), so every load's
warnings are read back and any warning fails the load.

MySQL DDL commits implicitly, so atomicity comes from staging tables:
``append`` loads inside one InnoDB transaction; ``full_refresh`` loads a
staging table and swaps it in with one atomic ``RENAME TABLE``; ``merge`` loads
a staging table and upserts with ``INSERT ... ON DUPLICATE KEY UPDATE`` in one
transaction (the last occurrence of a key in the load wins).

Type mapping (Arrow -> MySQL): bool BOOLEAN; int8 TINYINT; int16 SMALLINT;
int32 INT; int64 BIGINT; uint64 BIGINT UNSIGNED; float32 FLOAT; float64 DOUBLE;
decimal(p,s) DECIMAL(p,s) (p <= 65); strings LONGTEXT (VARCHAR(768) when part
of a primary key); binary LONGBLOB; date DATE; timestamp DATETIME(6) (zoned
values converted to UTC); time TIME(6); lists and structs JSON.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.connectors.arrow_pipe import SerialWorker
from conduit_core.connectors.base import BaseDestination, BaseSource, Capabilities, ReadRequest, WriteMode, WriteTarget
from conduit_core.connectors.server import ServerOptions
from conduit_core.connectors.sql import CHECKPOINT_TABLE, TableOrQueryOptions, keyset_position, source_query
from conduit_core.errors import ConduitError, ConnectionError, DataError, FatalError, MissingDriverError, StateError
from conduit_core.observe.redact import clip, redact
from conduit_core.schema.declared import not_null
from conduit_core.schema.diff import Change, ChangeKind
from conduit_core.schema.exact import refuse_finer_than
from conduit_core.schema.model import Column, TableSchema
from conduit_core.state.resume import COMPLETE, IN_PROGRESS, ResumeState, state_key

# Lost connection, server gone, can't connect, deadlock, lock wait timeout, server shutdown.
_RETRIABLE_CODES = {2002, 2003, 2006, 2013, 2055, 1213, 1205, 1053, 1927}
_DATA_CODES = {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1416, 3140}
_CHUNK_BYTES = 16 * 1024 * 1024


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MySQLOptions(ServerOptions):
    default_port = 3306

    charset: str = "utf8mb4"


def translate(exc: BaseException, what: str, options: MySQLOptions) -> ConduitError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = clip(redact(str(exc.args[1]) if len(exc.args) > 1 else str(exc), options.secrets()))
    message = f"MySQL {what} failed{f' (error {code})' if code else ''}: {text}"
    if code in _RETRIABLE_CODES:
        return ConnectionError(message, hint="a transient error: the load is redone as set by `retries:`")
    if code in _DATA_CODES:
        return DataError(message, hint="fix the offending values in the source")
    return FatalError(message)


def connect(options: MySQLOptions, **extra: Any) -> Any:
    try:
        import pymysql
    except ImportError as exc:
        raise MissingDriverError("pymysql", "mysql", "the MySQL connector") from exc
    parts = options.parts()
    try:
        return pymysql.connect(host=parts["host"], port=parts["port"], user=parts["user"],
                               password=parts["password"] or "", database=parts["database"],
                               charset=options.charset, connect_timeout=options.connect_timeout, **extra)
    except pymysql.Error as exc:
        raise translate(exc, "connection", options) from None


class MySQLSourceOptions(MySQLOptions, TableOrQueryOptions):
    pass



class MySQLSource(BaseSource):
    """Streams a table or query through an unbuffered result of ``mysqlclient`` (see :mod:`.mysql_read`)."""

    Options = MySQLSourceOptions
    options: MySQLSourceOptions
    rereadable = True

    def _sql(self, request: ReadRequest) -> tuple[str, list[Any]]:
        table = quote_ident(self.options.table) if self.options.table else None
        return source_query(self.options, request, table, "MySQL", placeholder=lambda _: "%s", quote=quote_ident)

    def _connect(self) -> Any:
        from conduit_core.connectors import mysql_read

        mysqldb = mysql_read.driver()
        try:
            return mysql_read.connect(self.options.parts(), charset=self.options.charset,
                                      connect_timeout=self.options.connect_timeout)
        except mysqldb.Error as exc:
            raise translate(exc, "connection", self.options) from None

    def test_connection(self) -> bool:
        self._connect().close()
        return True

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        from conduit_core.connectors import mysql_read

        sql, params = self._sql(request)  # a configuration error before any connection
        con = self._connect()
        batches: Generator[pa.RecordBatch, None, None] | None = None
        try:
            try:
                with con.cursor() as cur:
                    # An unbuffered result waits on the server while other resources load or preflight runs:
                    # the default net_write_timeout (60 s) would drop the connection under it.
                    cur.execute("SET SESSION net_write_timeout = 3600")
            except mysql_read.driver().Error as exc:
                raise translate(exc, "query", self.options) from None
            # Held in a variable, so that an early stop closes it here (closing the connection first),
            # not when the loop drops it, which would read the rest of the result.
            batches = mysql_read.read_arrow(con, sql, params, request.batch_size,
                                            lambda exc, what: translate(exc, what, self.options))
            row = 0
            for data in batches:
                row += data.num_rows
                yield Batch(data, position=keyset_position(data, request), first_row=row - data.num_rows + 1)
        finally:
            if batches is not None:
                batches.close()
            with contextlib.suppress(Exception):
                con.close()


def mysql_type(field: pa.Field, key: bool = False) -> str:
    t = field.type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    simple = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT",
              pa.uint8(): "TINYINT UNSIGNED", pa.uint16(): "SMALLINT UNSIGNED", pa.uint32(): "INT UNSIGNED",
              pa.uint64(): "BIGINT UNSIGNED", pa.float16(): "FLOAT", pa.float32(): "FLOAT", pa.float64(): "DOUBLE",
              pa.date32(): "DATE", pa.date64(): "DATE"}
    if t in simple:
        return simple[t]
    if pa.types.is_decimal(t):
        return f"DECIMAL({min(t.precision, 65)},{min(t.scale, 30)})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR(768)" if key else "LONGTEXT"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "VARBINARY(3072)" if key else "LONGBLOB"
    if pa.types.is_timestamp(t):
        return "DATETIME(6)"
    if pa.types.is_time(t):
        return "TIME(6)"
    if pa.types.is_nested(t):
        return "JSON"
    msg = f"no MySQL type for Arrow type {t}"
    raise DataError(msg, column=field.name, hint="cast the column in the source")


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Values as LOAD DATA reads them: booleans 0/1, zoned timestamps in UTC."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_boolean(array.type):
            array = pc.cast(array, pa.int8())  # noqa: PLW2901
        elif pa.types.is_timestamp(array.type) and array.type.tz:
            array = pc.cast(pc.cast(array, pa.timestamp(array.type.unit, "UTC")),  # noqa: PLW2901
                            pa.timestamp(array.type.unit))
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


class MySQLDestinationOptions(MySQLOptions):
    pass


class MySQLDestination(BaseDestination):
    """LOAD DATA LOCAL INFILE per batch; staging tables for full_refresh and merge."""

    Options = MySQLDestinationOptions
    options: MySQLDestinationOptions
    # Identifiers of at most 64 characters; InnoDB's 1017 columns per table.
    capabilities = Capabilities(transactional=True, merge=True, full_refresh=True, checkpoints=True,
                                case_insensitive_names=True, max_identifier_chars=64, max_columns=1017)

    def test_connection(self) -> bool:
        connect(self.options).close()
        return True

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import pymysql

        try:
            with self._con.cursor() as cur:
                cur.execute(sql, params or None)
                return list(cur.fetchall())
        except pymysql.Error as exc:
            raise translate(exc, "statement", self.options) from None

    def _columns(self, table: str) -> list[str] | None:
        rows = self._run("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                         "AND table_name = %s ORDER BY ordinal_position", (table,))
        return [r[0] for r in rows] or None

    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        import duckdb

        self._table = target.table or target.resource
        self._con = connect(self.options, local_infile=True, autocommit=False)
        self._run("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
        self._duck = duckdb.connect()
        self._tmp = Path(tempfile.mkdtemp(prefix="conduit-mysql-"))
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._chunk_first_row = 1
        self._loader = SerialWorker()
        existing = self._columns(self._table)
        #: Created by this load (MySQL's DDL commits at once): a load that fails before committing any rows
        #: drops it again, so a failed first load leaves no empty table behind.
        self._created = existing is None
        if existing is None:
            self._create(self._table, schema, target.primary_key if target.mode is WriteMode.MERGE else ())
        else:
            missing = [n for n in schema.names if n not in existing]
            if missing:
                msg = f"table {self._table!r} has no column(s) {missing}; its columns are {existing}"
                raise DataError(msg, hint="add the columns to the table (ALTER TABLE ... ADD COLUMN), or drop it")
        self._load_into = self._table
        self._checkpointed = False
        if target.mode is not WriteMode.APPEND:
            if target.mode is WriteMode.MERGE:
                self._check_key(target)
            resumed = target.resume.stage if target.resume is not None else None
            self._load_into = resumed or f"_conduit_stage_{uuid.uuid4().hex[:16]}"
            if resumed is not None:
                self._checkpointed = True  # the stage holds committed rows: never drop it on failure
                if self._columns(resumed) is None:
                    msg = f"the staging table {resumed!r} of the checkpointed load is gone"
                    raise StateError(msg, hint=f"`conduit state reset {target.resource}` and run again")
            elif target.mode is WriteMode.FULL_REFRESH:  # the swapped-in table keeps the target's definition
                self._run(f"CREATE TABLE {quote_ident(self._load_into)} LIKE {quote_ident(self._table)}")
            else:
                self._create(self._load_into, schema, (), sequence=True)
        # DDL commits implicitly in MySQL: the state table must exist before the transaction starts.
        self._run(f"CREATE TABLE IF NOT EXISTS {quote_ident(CHECKPOINT_TABLE)} (resource VARCHAR(255) PRIMARY KEY, "
                  "state LONGTEXT NOT NULL, updated_at VARCHAR(40) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        self._run("START TRANSACTION")

    def _create(self, table: str, schema: pa.Schema, key: tuple[str, ...], *, sequence: bool = False) -> None:
        columns = [f"{quote_ident(f.name)} {mysql_type(f, f.name in key)}{' NOT NULL' if not_null(f) else ''}"
                   for f in schema]
        if key:
            columns.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in key)})")
        if sequence:  # insertion order of the staging rows, so the last occurrence of a key wins
            columns.append("`_conduit_seq` BIGINT AUTO_INCREMENT PRIMARY KEY")
        self._run(f"CREATE TABLE {quote_ident(table)} ({', '.join(columns)}) ENGINE=InnoDB "
                  "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")

    def _check_key(self, target: WriteTarget) -> None:
        rows = self._run("SELECT index_name, column_name FROM information_schema.statistics WHERE "
                         "table_schema = DATABASE() AND table_name = %s AND non_unique = 0", (self._table,))
        indexes: dict[str, set[str]] = {}
        for index, column in rows:
            indexes.setdefault(index, set()).add(column)
        if set(target.primary_key) not in indexes.values():
            msg = f"merge needs a primary key or unique index on {list(target.primary_key)} of table {self._table!r}"
            raise DataError(msg, hint=f"ALTER TABLE ... ADD PRIMARY KEY ({', '.join(target.primary_key)})")

    def write_batch(self, batch: Batch) -> int:
        if batch.num_rows == 0:
            return 0
        refuse_finer_than(batch.data, "us", batch.first_row, "MySQL")
        # Batches are gathered into chunks of ~16 MB, each rendered to CSV once and loaded by a
        # background thread while the next is gathered: the server's work overlaps with ours.
        if not self._pending:
            self._chunk_first_row = batch.first_row
        self._pending.append(_csv_ready(batch.data))
        self._pending_bytes += batch.data.nbytes
        if self._pending_bytes >= _CHUNK_BYTES:
            self._submit_chunk()
        return batch.num_rows

    def _submit_chunk(self) -> None:
        if not self._pending:
            return
        data = pa.Table.from_batches(self._pending)
        chunk = self._tmp / f"chunk-{self._chunk_first_row}.csv"
        select = ", ".join(
            f"hex({_dq(f.name)}) AS {_dq(f.name)}" if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
            else (f"to_json({_dq(f.name)}) AS {_dq(f.name)}" if pa.types.is_nested(f.type) else _dq(f.name))
            for f in data.schema)
        # Text is always quoted, so a bare NULL can only mean NULL; numbers and dates stay bare,
        # which MySQL parses faster.
        quoted = ", ".join(_dq(f.name) for f in data.schema if _is_text(f.type))
        force = f", FORCE_QUOTE ({quoted})" if quoted else ""
        self._duck.register("_conduit_chunk", data)
        try:
            self._duck.execute(f"COPY (SELECT {select} FROM _conduit_chunk) TO '{chunk}' (FORMAT csv, HEADER false, "
                               f"NULLSTR 'NULL', QUOTE '\"', ESCAPE '\"', DELIMITER ','{force})")
        finally:
            self._duck.unregister("_conduit_chunk")
        rows, first = data.num_rows, self._chunk_first_row
        self._pending, self._pending_bytes = [], 0
        self._loader.submit(lambda: self._load_chunk(chunk, rows, first))

    def _load_chunk(self, chunk: Path, expected: int, first_row: int) -> None:
        import pymysql

        schema = self.schema
        if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in schema):
            columns = ", ".join(f"@c{i}" for i in range(len(schema)))
            sets = " SET " + ", ".join(
                f"{quote_ident(f.name)} = " + (f"UNHEX(@c{i})" if pa.types.is_binary(f.type)
                                               or pa.types.is_large_binary(f.type) else f"@c{i}")
                for i, f in enumerate(schema))
        else:
            columns, sets = ", ".join(quote_ident(n) for n in schema.names), ""
        sql = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote_ident(self._load_into)} CHARACTER SET utf8mb4 "
               "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
               f"({columns}){sets}")
        try:
            with self._con.cursor() as cur:
                loaded = cur.execute(sql, (str(chunk),))
        except pymysql.Error as exc:
            raise translate(exc, "LOAD DATA", self.options) from None
        finally:
            chunk.unlink(missing_ok=True)
        warnings = self._con.show_warnings()
        if warnings:
            msg = (f"MySQL rejected values ({len(warnings)} warning(s); first: {warnings[0][2]}); LOAD DATA LOCAL "
                   "would keep altered values, so the load is rolled back")
            raise DataError(msg, row=first_row, hint="MySQL numbers rows from the chunk that starts at source row "
                            f"{first_row}; fix the values or widen the column")
        if loaded != expected:
            msg = f"LOAD DATA loaded {loaded} rows of {expected}"
            raise DataError(msg, row=first_row)

    def commit(self) -> None:
        self._publish(None, final=True)

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        state.stage = None if final else (self._load_into if self._load_into != self._table else None)
        self._publish(state, final=final)

    def _publish(self, state: ResumeState | None, *, final: bool) -> None:
        self._submit_chunk()
        self._loader.join()
        if self.target.mode is WriteMode.MERGE:
            self._merge_stage()
        swap = final and self.target.mode is WriteMode.FULL_REFRESH
        if state is not None:
            # RENAME TABLE commits on its own: the state first records that only the swap remains.
            self._save_state(replace(state, status=IN_PROGRESS, publishing=True, stage=self._load_into)
                             if swap else state, self.target)
        self._commit(state is not None)
        self._checkpointed = state is not None
        if swap:
            self._swap(self._load_into)
            if state is not None:
                self._save_state(state, self.target)
                self._commit(True)
        elif final and self.target.mode is WriteMode.MERGE:
            self._run(f"DROP TABLE {quote_ident(self._load_into)}")
        if not final:
            self._loader = SerialWorker()  # join() ended the previous one
            self._run("START TRANSACTION")

    def _merge_stage(self) -> None:
        table, stage = quote_ident(self._table), quote_ident(self._load_into)
        cols = ", ".join(quote_ident(n) for n in self.schema.names)
        updates = ", ".join(f"{quote_ident(n)} = VALUES({quote_ident(n)})" for n in self.schema.names
                            if n not in self.target.primary_key) or \
            f"{quote_ident(self.target.primary_key[0])} = {quote_ident(self.target.primary_key[0])}"
        self._run(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY `_conduit_seq` "
                  f"ON DUPLICATE KEY UPDATE {updates}")
        self._run(f"DELETE FROM {stage}")  # DML, unlike TRUNCATE: it commits with the checkpoint

    def _swap(self, stage_name: str) -> None:
        table, stage = quote_ident(self._table), quote_ident(stage_name)
        old = quote_ident(f"_conduit_old_{uuid.uuid4().hex[:16]}")
        # One RENAME TABLE statement swaps both names atomically for readers.
        self._run(f"RENAME TABLE {table} TO {old}, {stage} TO {table}")
        self._run(f"DROP TABLE {old}")

    def target_id(self, target: WriteTarget) -> str:
        return f"{self.options.parts()['database'] or ''}.{target.table or target.resource}"

    def _keys(self, target: WriteTarget) -> tuple[str, str]:
        """The target's own key, and the bare resource name an earlier conduit filed states under."""
        return state_key(target.resource, self.target_id(target)), target.resource

    def _save_state(self, state: ResumeState, target: WriteTarget) -> None:
        self._run(f"REPLACE INTO {quote_ident(CHECKPOINT_TABLE)} VALUES (%s, %s, %s)",
                  (self._keys(target)[0], state.to_json(), state.updated_at))

    def _commit(self, retriable: bool = False) -> None:
        import pymysql

        try:
            self._con.commit()
        except pymysql.Error as exc:
            error = translate(exc, "commit", self.options)
            if retriable:  # the state row commits with the data: a retry reads it back and knows
                msg = f"{error.message}; the retry checks the committed checkpoint before going on"
                raise ConnectionError(msg, hint=error.hint) from None
            msg = f"{error.message}; the outcome of the commit is unknown, so the load is not retried"
            raise FatalError(msg, hint=f"check table {self._table!r} before running again") from None

    # -- schema ---------------------------------------------------------------------------------
    def table_schema(self, target: WriteTarget) -> TableSchema | None:
        self._con = connect(self.options, autocommit=True)
        try:
            rows = self._run("SELECT column_name, column_type, is_nullable FROM information_schema.columns "
                             "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
                             (target.table or target.resource,))
        finally:
            self.close()
        if not rows:
            return None
        return TableSchema(tuple(Column(name, _arrow_type_for_mysql(native), nullable == "YES", native)
                                 for name, native, nullable in rows))

    def evolve(self, target: WriteTarget, changes: Sequence[Change]) -> list[str]:
        table = quote_ident(target.table or target.resource)
        current = self.table_schema(target) or TableSchema()
        statements = []
        for change in changes:
            assert change.target is not None
            column = quote_ident(change.column)
            if change.kind is ChangeKind.ADDED:
                statements.append(f"ALTER TABLE {table} ADD COLUMN {column} "
                                  f"{mysql_type(pa.field(change.column, change.target.type or pa.string()))}")
                continue
            existing = current.get(change.column)
            native = mysql_type(pa.field(change.column, change.target.type)) if change.kind is ChangeKind.TYPE \
                and change.target.type is not None else (existing.native if existing else None) or "LONGTEXT"
            nullable = change.kind is ChangeKind.NULLABILITY or existing is None or existing.nullable
            null = "NULL" if nullable else "NOT NULL"
            statements.append(f"ALTER TABLE {table} MODIFY COLUMN {column} {native} {null}")
        self._con = connect(self.options, autocommit=True)
        try:
            for sql in statements:  # MySQL commits each ALTER on its own
                self._run(sql)
        finally:
            self.close()
        return statements

    # -- checkpoint state (read and discarded outside a load) ----------------------------------
    def _state_connection(self) -> bool:
        self._con = connect(self.options, autocommit=True)
        rows = self._run("SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
                         "AND table_name = %s", (CHECKPOINT_TABLE,))
        return bool(rows)

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        self._table = target.table or target.resource
        try:
            if not self._state_connection():
                return None
            own, legacy = self._keys(target)
            rows = self._run(f"SELECT state FROM {quote_ident(CHECKPOINT_TABLE)} WHERE resource IN (%s, %s) "
                             "ORDER BY resource = %s DESC", (own, legacy, own))
            state = ResumeState.from_json(rows[0][0]) if rows else None
            if state is not None and state.publishing and state.stage:
                # Killed between committing the data and the swap: finish the swap now.
                if self._columns(state.stage) is not None:
                    self._swap(state.stage)
                state = replace(state, status=COMPLETE, publishing=False, stage=None, position=None, schema=None)
                self._save_state(state, target)
            return state
        finally:
            self.close()

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        try:
            if not self._state_connection():
                return
            if state.stage:
                self._run(f"DROP TABLE IF EXISTS {quote_ident(state.stage)}")
            self._run(f"DELETE FROM {quote_ident(CHECKPOINT_TABLE)} WHERE resource IN (%s, %s)", self._keys(target))
        finally:
            self.close()

    def abort(self) -> None:
        loader = getattr(self, "_loader", None)
        if loader is not None:
            with contextlib.suppress(BaseException):  # its error is the one being handled already
                loader.join()
        con = getattr(self, "_con", None)
        if con is None:
            return
        with contextlib.suppress(Exception):
            con.rollback()
        stage = getattr(self, "_load_into", None)
        committed = getattr(self, "_checkpointed", False)
        if stage and stage != getattr(self, "_table", None) and not committed:
            with contextlib.suppress(Exception), con.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {quote_ident(stage)}")
        if getattr(self, "_created", False) and not committed:
            with contextlib.suppress(Exception), con.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {quote_ident(self._table)}")

    def close(self) -> None:
        for name in ("_con", "_duck"):
            handle = getattr(self, name, None)
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
                setattr(self, name, None)
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


_MYSQL_INTS = {"tinyint": pa.int8(), "smallint": pa.int16(), "mediumint": pa.int32(), "int": pa.int32(),
               "bigint": pa.int64()}


def _arrow_type_for_mysql(native: str) -> pa.DataType | None:
    """The Arrow type of a MySQL column type (``COLUMN_TYPE`` text), or None where it is not exact
    (unsigned integers, DATETIME without a time zone, ...)."""
    name = native.strip().lower()
    base = name.split("(", 1)[0].strip()
    if "unsigned" in name:
        return None
    if name.startswith("tinyint(1)"):
        return pa.bool_()
    if base in _MYSQL_INTS:
        return _MYSQL_INTS[base]
    if base in {"float", "double"}:
        return pa.float32() if base == "float" else pa.float64()
    if base == "decimal" and "(" in name:
        precision, _, scale = name[name.index("(") + 1:name.index(")")].partition(",")
        return pa.decimal128(int(precision), int(scale or 0)) if int(precision) <= 38 else None
    if base in {"varchar", "char", "text", "tinytext", "mediumtext", "longtext", "json"}:
        return pa.string()
    if base in {"varbinary", "binary", "blob", "tinyblob", "mediumblob", "longblob"}:
        return pa.binary()
    if base == "date":
        return pa.date32()
    return None


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
                or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_nested(t))


def _dq(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
