"""The MySQL/MariaDB source against the real server: every column type read back exactly, batches of
``batch_size`` rows, the incremental mark pushed down as a bound parameter, keyset resume, and errors.

Each test works in its own database (the ``mysql`` fixture) and drops it after.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conduit_core.connectors.base import ReadRequest
from conduit_core.connectors.mysql import MySQLSource
from conduit_core.errors import ConnectionError, DataError, FatalError, MissingDriverError
from conduit_core.state.values import decode_value
from tests.conftest import CliRunner
from tests.e2e.test_crash_resume import _assert_exact, _config, _crash_and_resume, _source_table

# (column, MySQL type, Arrow type the source must give it)
COLUMNS = [
    ("id", "INT NOT NULL PRIMARY KEY", pa.int64()),
    ("i8", "TINYINT", pa.int64()), ("u8", "TINYINT UNSIGNED", pa.int64()), ("flag", "BOOLEAN", pa.int64()),
    ("i16", "SMALLINT", pa.int64()), ("u16", "SMALLINT UNSIGNED", pa.int64()),
    ("i24", "MEDIUMINT", pa.int64()), ("u24", "MEDIUMINT UNSIGNED", pa.int64()),
    ("i32", "INT", pa.int64()), ("u32", "INT UNSIGNED", pa.int64()),
    ("i64", "BIGINT", pa.int64()), ("u64", "BIGINT UNSIGNED", pa.uint64()),
    ("f32", "FLOAT", pa.float64()), ("f64", "DOUBLE", pa.float64()),
    ("d38", "DECIMAL(38,10)", pa.decimal128(38, 10)), ("d52u", "DECIMAL(5,2) UNSIGNED", pa.decimal128(5, 2)),
    ("d20", "DECIMAL(20,0)", pa.decimal128(20, 0)), ("d104", "DECIMAL(10,4)", pa.decimal128(10, 4)),
    ("day", "DATE", pa.date32()), ("dtm", "DATETIME(6)", pa.timestamp("us")), ("dt0", "DATETIME", pa.timestamp("us")),
    ("ts", "TIMESTAMP(6) NULL", pa.timestamp("us")), ("tm", "TIME(6)", pa.duration("us")), ("yr", "YEAR", pa.int64()),
    ("bits", "BIT(10)", pa.binary()),
    ("vc", "VARCHAR(100)", pa.string()), ("tx", "TEXT", pa.string()), ("ch", "CHAR(5)", pa.string()),
    ("lat", "VARCHAR(20) CHARACTER SET latin1", pa.string()), ("en", "ENUM('a','b')", pa.string()),
    ("st", "SET('x','y')", pa.string()),
    ("bn", "BINARY(4)", pa.binary()), ("vb", "VARBINARY(20)", pa.binary()), ("bl", "BLOB", pa.binary()),
    ("js", "JSON", pa.string()),
]
NAMES = [c[0] for c in COLUMNS]
# Everything NULL but the key comes first: the types come from the result's metadata, not from values.
NULL_ROW: dict[str, Any] = dict.fromkeys(NAMES) | {"id": 1}
MAX_ROW: dict[str, Any] = {
    "id": 2, "i8": 127, "u8": 255, "flag": 1, "i16": 32767, "u16": 65535, "i24": 8388607, "u24": 16777215,
    "i32": 2**31 - 1, "u32": 2**32 - 1, "i64": 2**63 - 1, "u64": 2**64 - 1, "f32": 1.5, "f64": 0.1 + 0.2,
    "d38": Decimal("9999999999999999999999999999.9999999999"), "d52u": Decimal("999.99"),
    "d20": Decimal("99999999999999999999"), "d104": Decimal("123456.7890"),
    "day": date(9999, 12, 31), "dtm": datetime(9999, 12, 31, 23, 59, 59, 999999),
    "dt0": datetime(2020, 1, 1, 0, 0, 1), "ts": datetime(2037, 12, 31, 23, 59, 59, 999999),
    "tm": timedelta(hours=838, minutes=59, seconds=59), "yr": 2155, "bits": b"\x03\xff",
    "vc": "emoji 😀 and ünïcödé", "tx": 'multi\nline\ttext "quoted" \\ back\\slash, NULL', "ch": "abc",
    "lat": "café", "en": "b", "st": "x,y", "bn": b"\x00\xff\x01\x02", "vb": b"\x00", "bl": bytes(range(256)),
    "js": '{"a": [1, 2.5, "😀"], "b": null}',
}
MIN_ROW: dict[str, Any] = {
    "id": 3, "i8": -128, "u8": 0, "flag": 0, "i16": -32768, "u16": 0, "i24": -8388608, "u24": 0,
    "i32": -(2**31), "u32": 0, "i64": -(2**63), "u64": 2**63, "f32": -0.25, "f64": 1.7976931348623157e308,
    "d38": Decimal("-9999999999999999999999999999.9999999999"), "d52u": Decimal("0.01"),
    "d20": Decimal("-99999999999999999999"), "d104": Decimal("-0.0001"),
    "day": date(1000, 1, 1), "dtm": datetime(1000, 1, 1, 0, 0, 0, 1), "dt0": datetime(1999, 12, 31, 23, 59, 59),
    "ts": datetime(2000, 2, 29, 12, 34, 56, 1), "tm": -timedelta(hours=838, minutes=59, seconds=59), "yr": 1901,
    "bits": b"\x00\x00", "vc": "", "tx": "", "ch": "", "lat": "", "en": "a", "st": "", "bn": b"\x00\x00\x00\x00",
    "vb": b"", "bl": b"", "js": "[]",
}
MID_ROW: dict[str, Any] = dict.fromkeys(NAMES) | {
    "id": 4, "i64": -(2**53) - 1, "u64": 2**53 + 1, "f64": 5e-324, "d38": Decimal("0.0000000001"),
    "dtm": datetime(2024, 2, 29, 12, 0, 0, 500000), "tm": timedelta(hours=12, minutes=34, seconds=56,
                                                                  microseconds=789012),
    "vc": "NULL", "bits": b"\x00\x01",
}
ROWS = [NULL_ROW, MAX_ROW, MIN_ROW, MID_ROW]


def _dsn(mysql: Any, mysql_dsn: str) -> str:
    return mysql_dsn.rsplit("/", 1)[0] + f"/{mysql.database}"


def _create_types_table(mysql: Any) -> None:
    with mysql.cursor() as cur:
        cur.execute(f"CREATE TABLE types ({', '.join(f'`{n}` {t}' for n, t, _ in COLUMNS)}) "
                    "DEFAULT CHARSET=utf8mb4")
        values = []
        for row in ROWS:
            # BIT(n) takes a number; every other value goes in as the Python value itself.
            bits = row["bits"]
            values.append([int.from_bytes(bits, "big") if name == "bits" and bits is not None else row[name]
                           for name in NAMES])
        cur.executemany(f"INSERT INTO types VALUES ({', '.join(['%s'] * len(NAMES))})", values)


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """JSON compared as JSON: MySQL normalises its text, MariaDB keeps it."""
    return {k: json.loads(v) if k == "js" and v is not None else v for k, v in row.items()}


def _source(mysql: Any, mysql_dsn: str, **options: Any) -> MySQLSource:
    return MySQLSource({"dsn": _dsn(mysql, mysql_dsn), **options})


@pytest.mark.parametrize("batch_size", [1, 2, 3, 50])
def test_every_type_reads_back_exactly(mysql: Any, mysql_dsn: str, batch_size: int) -> None:
    _create_types_table(mysql)
    source = _source(mysql, mysql_dsn, query="SELECT * FROM types ORDER BY id")
    batches = list(source.read_batches(ReadRequest(batch_size=batch_size)))
    assert [b.num_rows for b in batches] == [min(batch_size, len(ROWS) - i) for i in range(0, len(ROWS), batch_size)]
    assert [b.first_row for b in batches] == list(range(1, len(ROWS) + 1, batch_size))
    expected_schema = pa.schema([pa.field(n, t) for n, _, t in COLUMNS])
    for batch in batches:  # the same types in every batch, also one holding only the all-NULL row
        assert batch.data.schema.equals(expected_schema), batch.data.schema
    table = pa.Table.from_batches([b.data for b in batches])
    assert [_comparable(r) for r in table.to_pylist()] == [_comparable(r) for r in ROWS]


def test_expressions_and_bare_nulls_get_types_from_the_result(mysql: Any, mysql_dsn: str) -> None:
    source = _source(mysql, mysql_dsn, query="SELECT NULL AS nothing, 1.50 AS lit, CAST(-5 AS UNSIGNED) AS wrapped, "
                                             "CAST('2024-01-02 03:04:05.000006' AS DATETIME(6)) AS at, "
                                             "_binary'\\0x' AS raw, 'text' AS word")
    (batch,) = source.read_batches(ReadRequest())
    assert batch.data.schema.types == [pa.string(), pa.decimal128(3, 2), pa.uint64(), pa.timestamp("us"),
                                       pa.binary(), pa.string()]
    assert batch.data.to_pylist() == [{"nothing": None, "lit": Decimal("1.50"), "wrapped": 2**64 - 5,
                                       "at": datetime(2024, 1, 2, 3, 4, 5, 6), "raw": b"\x00x", "word": "text"}]


def test_every_type_through_conduit_run_into_parquet(tmp_path: Path, cli: CliRunner, mysql: Any, mysql_dsn: str,
                                                     write_config: Callable[[str], Path]) -> None:
    _create_types_table(mysql)
    write_config(f"""\
    sources: [{{name: my, type: mysql, dsn: "{_dsn(mysql, mysql_dsn)}", table: types}}]
    destinations: [{{name: lake, type: parquet, path: out.parquet}}]
    resources: [{{name: types, source: my, destination: lake, mode: full_refresh}}]
    """)
    result = cli("run", "--no-progress", "--batch-size", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    table = pq.read_table(tmp_path / "out.parquet").sort_by("id")
    assert table.schema.remove_metadata().equals(pa.schema([pa.field(n, t) for n, _, t in COLUMNS]))
    assert [_comparable(r) for r in table.to_pylist()] == [_comparable(r) for r in ROWS]


def test_a_value_without_an_arrow_value_fails_with_its_row_and_column(mysql: Any, mysql_dsn: str) -> None:
    with mysql.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # allows zero dates
        cur.execute("CREATE TABLE odd (id INT PRIMARY KEY, day DATE)")
        cur.execute("INSERT INTO odd VALUES (1, '2024-01-01'), (2, NULL), (3, '0000-00-00')")
    source = _source(mysql, mysql_dsn, query="SELECT * FROM odd ORDER BY id")
    with pytest.raises(DataError) as caught:
        list(source.read_batches(ReadRequest(batch_size=10)))
    assert caught.value.row == 3
    assert caught.value.column == "day"
    assert "0000-00-00" in caught.value.message
    assert "NULLIF" in (caught.value.hint or "")


def test_keyset_resume_continues_after_the_last_key_of_a_batch(mysql: Any, mysql_dsn: str) -> None:
    """Keys beyond int64 (BIGINT UNSIGNED) and microsecond DATETIME keys, bound as parameters on resume."""
    with mysql.cursor() as cur:
        cur.execute("CREATE TABLE k (id BIGINT UNSIGNED PRIMARY KEY, at DATETIME(6) NOT NULL UNIQUE, v TEXT)")
        base = datetime(2024, 1, 1)
        cur.executemany("INSERT INTO k VALUES (%s, %s, %s)",
                        [(2**63 + i * 3, base + timedelta(microseconds=i), f"v{i}") for i in range(20)])
    for key in ("id", "at"):
        source = _source(mysql, mysql_dsn, table="k")
        first = list(source.read_batches(ReadRequest(batch_size=6, checkpoint_column=key)))
        assert [b.num_rows for b in first] == [6, 6, 6, 2]
        everything = pa.Table.from_batches([b.data for b in first])
        assert everything.column("id").to_pylist() == [2**63 + i * 3 for i in range(20)]  # ordered by the key
        position = first[1].position
        assert position is not None
        assert decode_value(position["after"]).as_py() == everything.column(key)[11].as_py()
        rest = list(source.read_batches(ReadRequest(batch_size=6, checkpoint_column=key, resume_position=position)))
        assert pa.Table.from_batches([b.data for b in rest]).equals(everything.slice(12))


def test_incremental_mark_is_pushed_down_as_a_parameter(tmp_path: Path, cli: CliRunner, mysql: Any,
                                                        mysql_dsn: str) -> None:
    """The mark is a DATETIME(6): rows one microsecond newer load, rows at the mark do not, and the engine
    filters nothing (only new rows leave the server)."""
    with mysql.cursor() as cur:
        cur.execute("CREATE TABLE events (id BIGINT UNSIGNED PRIMARY KEY, changed DATETIME(6) NOT NULL, note TEXT)")
    base = datetime(2024, 1, 1)

    def add(ids: range) -> None:
        with mysql.cursor() as cur:
            cur.executemany("INSERT INTO events VALUES (%s, %s, %s)",
                            [(2**63 + i, base + timedelta(microseconds=i), f"e{i}'; DROP TABLE events; --")
                             for i in ids])

    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: mysql, dsn: "{_dsn(mysql, mysql_dsn)}", table: events}}]
destinations: [{{name: dst, type: duckdb, path: out.duckdb}}]
resources:
  - name: copy
    source: src
    destination: dst
    table: events_copy
    checkpoint_column: id
    incremental: {{column: changed}}
""", encoding="utf-8")
    add(range(1, 101))
    total = 100
    for new_rows, ids in zip((100, 50, 1), (range(101, 151), range(151, 152), range(152, 400)), strict=True):
        result = cli("run", "--no-progress", "--json", "--batch-size", "7")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)["resources"][0]
        assert (report["rows_read"], report["rows_written"], report["rows_filtered"]) == (new_rows, new_rows, 0)
        add(ids)
        total += len(ids)
    assert cli("run", "--no-progress").returncode == 0
    import duckdb

    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        got = con.sql("SELECT count(*), count(DISTINCT id), min(id), max(id), max(changed) FROM events_copy").fetchall()
    assert got == [(total, total, 2**63 + 1, 2**63 + 399, base + timedelta(microseconds=399))]


@pytest.mark.parametrize("seed", [43])
def test_mysql_to_duckdb_survives_sigkill(tmp_path: Path, mysql: Any, mysql_dsn: str, seed: int) -> None:
    """Kills mid-load, then --resume: the keyset position carries the load on, no row lost or doubled."""
    import duckdb

    expected = _source_table()
    with mysql.cursor() as cur:
        cur.execute("CREATE TABLE source (id BIGINT PRIMARY KEY, name TEXT, v DOUBLE, ts DATETIME)")
        rows = list(zip(*(expected.column(c).to_pylist() for c in ("id", "name", "v", "ts")), strict=True))
        for start in range(0, len(rows), 20_000):
            cur.executemany("INSERT INTO source VALUES (%s, %s, %s, %s)", rows[start:start + 20_000])
    _config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}",
            source=f'{{name: src, type: mysql, dsn: "{_dsn(mysql, mysql_dsn)}", table: source}}',
            extra=", checkpoint_column: id")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        _assert_exact(con.sql("SELECT * FROM loaded").to_arrow_table(), expected)
    assert mid_load >= 1


def test_errors_are_translated_and_never_show_the_password(mysql: Any, mysql_dsn: str) -> None:
    with pytest.raises(FatalError, match=r"MySQL query failed \(error 1146\).*doesn't exist"):
        list(_source(mysql, mysql_dsn, table="missing").read_batches(ReadRequest()))
    with pytest.raises(FatalError, match=r"error 1064"):
        list(_source(mysql, mysql_dsn, query="SELEC 1").read_batches(ReadRequest()))
    secret = "s3cr3t-Pw_x"
    base = mysql_dsn.split("://", 1)[1].rsplit("/", 1)[0].rsplit("@", 1)[-1]
    denied = MySQLSource({"dsn": f"mysql://nobody_here:{secret}@{base}/{mysql.database}"})
    with pytest.raises(FatalError) as caught:
        denied.test_connection()
    assert "MySQL connection failed (error 1045)" in caught.value.message or "(error 1698)" in caught.value.message
    assert secret not in caught.value.message
    refused = MySQLSource({"host": "127.0.0.1", "port": 1, "user": "u", "password": secret, "connect_timeout": 2,
                           "table": "t"})
    with pytest.raises(ConnectionError) as down:
        list(refused.read_batches(ReadRequest()))
    assert re.search(r"\(error 200[23]\)", down.value.message)  # libmariadb: 2002, libmysqlclient: 2003
    assert secret not in down.value.message


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # import MySQLdb raises ImportError
    source = MySQLSource({"dsn": "mysql://u@127.0.0.1:3306/db", "table": "t"})
    with pytest.raises(MissingDriverError) as caught:
        list(source.read_batches(ReadRequest()))
    assert "mysqlclient" in caught.value.message
    assert "pip install 'conduit-core[mysql]'" in (caught.value.hint or "")
