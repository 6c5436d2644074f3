"""Reading a MySQL / MariaDB result into Arrow batches with ``mysqlclient`` (the ``MySQLdb`` C extension).

The result is unbuffered (``mysql_use_result``): rows are streamed from the
server as they are fetched, so memory holds one batch, and a slow destination
makes the server wait (TCP back-pressure) rather than the client buffer.

No value goes through Python's type conversions. ``mysqlclient`` is given no
decoders, so every value arrives as the text protocol's exact bytes (``str``
for text columns); ``pyarrow`` turns each batch's rows into columns and
casts them to the column's type in C++. The text protocol shows every value
exactly (DECIMAL digits, DATETIME(6) microseconds, BIGINT UNSIGNED up to
2**64-1, DOUBLE in round-trip form), except FLOAT, which the server prints with
6 significant digits.

The Arrow type of each column comes from the result's metadata (type code,
UNSIGNED flag, character set), never from the values, so it is the same in
every batch, also for a column that is NULL in the first rows:

======================================================  ==========================
MySQL / MariaDB                                         Arrow
======================================================  ==========================
TINYINT, SMALLINT, MEDIUMINT, INT (signed or unsigned),  int64
BIGINT, YEAR
BIGINT UNSIGNED                                         uint64
DECIMAL(p,s)                                            decimal128(min(p, 38), s)
FLOAT, DOUBLE                                           float64
DATE                                                    date32
DATETIME, TIMESTAMP                                     timestamp[us] (no zone)
TIME                                                    duration[us]
CHAR, VARCHAR, TEXT, ENUM, SET, JSON                    string
BINARY, VARBINARY, BLOB, BIT, GEOMETRY                  binary
a bare NULL (``SELECT NULL``)                           string
======================================================  ==========================
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from conduit_core.errors import DataError, MissingDriverError

# MySQL protocol type codes (include/mysql_com.h, enum_field_types) and field flags.
_DECIMAL, _TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _NULL, _TIMESTAMP, _LONGLONG, _INT24 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
_DATE, _TIME, _DATETIME, _YEAR, _NEWDATE, _VARCHAR, _BIT = 10, 11, 12, 13, 14, 15, 16
_TIMESTAMP2, _DATETIME2, _TIME2 = 17, 18, 19
_JSON, _NEWDECIMAL, _ENUM, _SET = 245, 246, 247, 248
_TINY_BLOB, _MEDIUM_BLOB, _LONG_BLOB, _BLOB, _VAR_STRING, _STRING, _GEOMETRY = 249, 250, 251, 252, 253, 254, 255
_UNSIGNED_FLAG = 32

_INTS = {_TINY, _SHORT, _LONG, _INT24, _LONGLONG, _YEAR}
_TEXT_OR_BINARY = {_VARCHAR, _TINY_BLOB, _MEDIUM_BLOB, _LONG_BLOB, _BLOB, _VAR_STRING, _STRING}


@dataclass(frozen=True)
class ColumnPlan:
    """How one result column becomes an Arrow array."""

    name: str
    type: pa.DataType
    #: "str": the driver hands out str; "bytes": bytes kept as binary; "cast": bytes of text parsed by an
    #: Arrow cast; "time": TIME text parsed here; "null": the column is NULL by type.
    kind: str


def _decimal_type(length: int, scale: int, unsigned: bool) -> pa.DataType:
    # The reported length is the display width: the digits, a point when there is a scale, and a sign
    # unless the column is UNSIGNED.
    digits = length - (1 if scale else 0) - (0 if unsigned else 1)
    return pa.decimal128(min(max(digits, scale, 1), 38), scale)


def plan_columns(description: Sequence[tuple[Any, ...]], flags: Sequence[int],
                 decoders: Sequence[Any]) -> list[ColumnPlan]:
    """The Arrow type of each column, from the result's metadata; ``decoders`` are the driver's per-column
    converters, which tell text (``str``) from binary (``bytes``) strings by the column's character set."""
    plans = []
    for (name, code, _, _, length, scale, _), flag, decoder in zip(description, flags, decoders, strict=True):
        unsigned = bool(flag & _UNSIGNED_FLAG)
        if code in _INTS:
            plan = ColumnPlan(name, pa.uint64() if code == _LONGLONG and unsigned else pa.int64(), "cast")
        elif code in (_DECIMAL, _NEWDECIMAL):
            plan = ColumnPlan(name, _decimal_type(int(length or 0), int(scale or 0), unsigned), "cast")
        elif code in (_FLOAT, _DOUBLE):
            plan = ColumnPlan(name, pa.float64(), "cast")
        elif code in (_DATE, _NEWDATE):
            plan = ColumnPlan(name, pa.date32(), "cast")
        elif code in (_DATETIME, _TIMESTAMP, _DATETIME2, _TIMESTAMP2):
            plan = ColumnPlan(name, pa.timestamp("us"), "cast")
        elif code in (_TIME, _TIME2):
            plan = ColumnPlan(name, pa.duration("us"), "time")
        elif code == _NULL:
            plan = ColumnPlan(name, pa.string(), "null")
        elif code in (_JSON, _ENUM, _SET):  # JSON is text even when MySQL sends it with the binary charset
            plan = ColumnPlan(name, pa.string(), "cast" if decoder is bytes else "str")
        elif code in (_BIT, _GEOMETRY):
            plan = ColumnPlan(name, pa.binary(), "bytes")
        elif code in _TEXT_OR_BINARY and decoder is not bytes:
            plan = ColumnPlan(name, pa.string(), "str")
        else:  # binary strings and blobs, and any type this table does not know: its bytes, unchanged
            plan = ColumnPlan(name, pa.binary(), "bytes")
        plans.append(plan)
    return plans


def _time_micros(value: bytes) -> int:
    """``[-]HHH:MM:SS[.ffffff]`` (MySQL's TIME, -838:59:59 to 838:59:59) in microseconds."""
    text = value.decode("ascii")
    negative = text.startswith("-")
    hours, minutes, seconds = text.lstrip("-").split(":")
    whole, _, fraction = seconds.partition(".")
    micros = (int(hours) * 3600 + int(minutes) * 60 + int(whole)) * 1_000_000 + int((fraction + "000000")[:6])
    return -micros if negative else micros


def _cast(plan: ColumnPlan, raw: pa.Array) -> pa.Array:
    if plan.kind in ("str", "bytes"):
        return raw
    if plan.kind == "null":
        return pa.nulls(len(raw), plan.type)
    if plan.kind == "time":
        micros = [None if v is None else _time_micros(v) for v in raw.to_pylist()]
        return pa.array(micros, pa.int64()).cast(plan.type)
    return raw.cast(pa.string()).cast(plan.type)


_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError)


def _convert(plan: ColumnPlan, raw: pa.Array, first_row: int) -> pa.Array:
    try:
        return _cast(plan, raw)
    except _CAST_ERRORS as exc:
        index, value = _first_bad(plan, raw)
        shown = "" if value is None else f" ({value!r})"
        msg = f"a value{shown} does not fit the column's type {plan.type}: {exc}"
        raise DataError(msg, column=plan.name, row=first_row + index,
                        hint="cast the column in the source query (a zero date such as '0000-00-00' has no "
                             "Arrow value: NULLIF it, or CAST it AS CHAR)") from None


def _first_bad(plan: ColumnPlan, raw: pa.Array) -> tuple[int, str | None]:
    """Where a batch's conversion failed: the first value that fails alone (only on the error path)."""
    for index in range(len(raw)):
        try:
            _cast(plan, raw.slice(index, 1))
        except _CAST_ERRORS:
            value = raw[index].as_py()
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return index, text[:80]
    return 0, None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch of row tuples exists.

    Fetching allocates one tuple per row; each allocation burst triggers collections that walk
    every pending tuple again, which costs a third of the read. The tuples hold only strings,
    bytes and None, so they form no cycles and nothing is left for the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def driver() -> Any:
    """The ``MySQLdb`` module, or a clear error saying how to install it."""
    try:
        import MySQLdb
    except ImportError as exc:
        error = MissingDriverError("mysqlclient", "mysql", "the MySQL source")
        error.hint = (f"{error.hint} (mysqlclient builds against the MySQL/MariaDB client library: on Debian or "
                      "Ubuntu `apt-get install libmariadb-dev pkg-config` first)")
        raise error from exc
    return MySQLdb


def connect(parts: dict[str, Any], *, charset: str, connect_timeout: int) -> Any:
    """A ``MySQLdb`` connection with no value decoders (values stay the protocol's bytes)."""
    mysqldb = driver()
    from MySQLdb.converters import conversions

    # Encoders only (Python values to SQL literals, for bound parameters). For text and blob columns
    # the driver itself adds its bytes-or-str decoder by the column's character set.
    encoders = {k: v for k, v in conversions.items() if not isinstance(k, int)}
    host = parts["host"]
    kwargs: dict[str, Any] = {
        # libmysqlclient reads "localhost" as the Unix socket: pymysql (and so conduit) always used TCP.
        "host": "127.0.0.1" if host in (None, "", "localhost") else host,
        "port": int(parts["port"]), "user": parts["user"] or "", "password": parts["password"] or "",
        "charset": charset, "connect_timeout": connect_timeout, "conv": encoders,
        "multi_statements": False,  # one statement per query, as with pymysql
    }
    if parts["database"]:
        kwargs["database"] = parts["database"]
    return mysqldb.connect(**kwargs)


def read_arrow(con: Any, sql: str, params: Sequence[Any], batch_size: int,
               on_error: Callable[[BaseException, str], BaseException]) -> Generator[pa.RecordBatch, None, None]:
    """Run ``sql`` (``%s`` placeholders bound to ``params``) unbuffered and yield its rows as batches of
    ``batch_size``. ``on_error(exc, what)`` turns a driver error into the exception to raise.

    ``con`` is closed when the generator ends, however it ends: closing the connection before the
    unfinished result is released is what keeps the driver from reading (and discarding) every
    remaining row first, which an early stop or an error would otherwise wait for."""
    mysqldb = driver()
    from MySQLdb.cursors import SSCursor

    cur = SSCursor(con)
    try:
        try:
            cur.execute(sql, tuple(params) if params else None)
        except mysqldb.Error as exc:
            raise on_error(exc, "query") from None
        description = cur.description or ()
        # The driver's per-column decoder: str for a text column, bytes for a binary one (by character set).
        decoders = getattr(getattr(cur, "_result", None), "converter", None) or (None,) * len(description)
        plans = plan_columns(description, cur.description_flags or (0,) * len(description), decoders)
        names = [p.name for p in plans]
        # Rows become one struct array in C++ (the transposition included); text columns arrive as str.
        row_type = pa.struct([pa.field(f"c{i}", pa.string() if p.kind == "str" else pa.binary())
                              for i, p in enumerate(plans)])
        first_row = 1
        while True:
            with _collector_paused():
                try:
                    rows = cur.fetchmany(batch_size)
                except mysqldb.Error as exc:
                    raise on_error(exc, "read") from None
                if not rows:
                    return
                raw = pa.array(rows, row_type).flatten()
                del rows
            arrays = [_convert(plan, array, first_row) for plan, array in zip(plans, raw, strict=True)]
            data = pa.RecordBatch.from_arrays(arrays, names=names)
            first_row += data.num_rows
            yield data
    finally:
        with contextlib.suppress(Exception):
            con.close()
