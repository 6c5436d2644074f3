"""MySQL/MariaDB through `conduit run`, verified in the real server (each test in its own database)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tests.conftest import CliRunner
from tests.e2e.test_postgresql import _csv, _ok

_CHECKSUM = ("SELECT count(*), sum(id), md5(group_concat(concat_ws('|', id, name, amount, active, day, ts, "
             "coalesce(score, '<null>'), coalesce(note, '<null>')) ORDER BY id SEPARATOR ',')) FROM {table}")


def _checksum(mysql: Any, table: str) -> tuple[Any, ...]:
    with mysql.cursor() as cur:
        cur.execute("SET SESSION group_concat_max_len = 1073741824")
        cur.execute(_CHECKSUM.format(table=table))
        return tuple(cur.fetchone())


def _query(mysql: Any, sql: str) -> list[tuple[Any, ...]]:
    with mysql.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def _config(mysql: Any, mysql_dsn: str, csv: str = "in.csv") -> str:
    base = mysql_dsn.rstrip("/").rsplit("/", 1)[0] if mysql_dsn.count("/") > 2 else mysql_dsn.rstrip("/")
    dsn = f"{base}/{mysql.database}"
    return f"""\
sources:
  - {{name: csv, type: csv, path: {csv}}}
  - {{name: my, type: mysql, dsn: "{dsn}", table: loaded}}
destinations:
  - {{name: myd, type: mysql, dsn: "{dsn}"}}
  - {{name: db, type: duckdb, path: out.duckdb}}
resources:
  - {{name: load, source: csv, destination: myd, table: loaded}}
  - {{name: to_duckdb, source: my, destination: db, table: copied, mode: full_refresh}}
  - {{name: merge, source: my, destination: myd, table: merged, mode: merge, primary_key: [id]}}
  - {{name: refresh, source: csv, destination: myd, table: refreshed, mode: full_refresh}}
"""


def test_csv_to_mysql_to_duckdb_and_merge(tmp_path: Path, cli: CliRunner, mysql: Any, mysql_dsn: str,
                                         write_config: Callable[[str], Path]) -> None:
    rows = 12_000
    _csv(tmp_path / "in.csv", rows)
    write_config(_config(mysql, mysql_dsn))
    _ok(cli("run", "load", "--batch-size", "2500", "--no-progress"))
    count, id_sum, _ = _checksum(mysql, "loaded")
    assert (count, int(id_sum)) == (rows, rows * (rows + 1) // 2)
    assert _query(mysql, "SELECT count(*) FROM loaded WHERE note = ''") == [(rows // 7,)]
    assert _query(mysql, "SELECT count(*) FROM loaded WHERE note IS NULL") == [(rows // 5 - rows // 35,)]
    assert _query(mysql, "SELECT note FROM loaded WHERE id = 1") == [('name 1, quoted "x"',)]

    _ok(cli("run", "to_duckdb", "merge", "--no-progress"))
    expected = _query(mysql, "SELECT id, name, amount, active, day, ts, score, note FROM loaded ORDER BY id")
    con = duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True)
    got = con.execute("SELECT id, name, amount, active, day, ts, score, note FROM copied ORDER BY id").fetchall()
    con.close()
    assert len(got) == rows
    # MySQL stores booleans as TINYINT(1): they come back as 0/1.
    assert [(*r[:3], bool(r[3]), *r[4:]) for r in got] == [(*r[:3], bool(r[3]), *r[4:]) for r in expected]

    before = _checksum(mysql, "merged")
    assert before == _checksum(mysql, "loaded")
    _ok(cli("run", "merge", "--no-progress"))
    assert _checksum(mysql, "merged") == before


def test_identifiers_are_quoted_with_backticks(tmp_path: Path, cli: CliRunner, mysql: Any, mysql_dsn: str,
                                               write_config: Callable[[str], Path]) -> None:
    _query(mysql, "CREATE TABLE users (id int)")
    header = ["`; DROP TABLE users; --", "with space", "UPPER", "ünï"]
    (tmp_path / "in.csv").write_text(",".join(header) + "\n1,2,3,4\n", encoding="utf-8")
    write_config(_config(mysql, mysql_dsn).replace("table: loaded}\n  - {name: to_duckdb",
                                                    "table: 'x`; DROP TABLE users; --'}\n  - {name: to_duckdb"))
    _ok(cli("run", "load", "--no-progress"))
    assert _query(mysql, "SHOW TABLES LIKE 'users'") == [("users",)]
    columns = _query(mysql, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                            "AND table_name = 'x`; DROP TABLE users; --' ORDER BY ordinal_position")
    assert [c[0] for c in columns] == header


def test_truncating_values_fail_the_load_instead_of_being_altered(tmp_path: Path, cli: CliRunner, mysql: Any,
                                                                  mysql_dsn: str,
                                                                  write_config: Callable[[str], Path]) -> None:
    _query(mysql, "CREATE TABLE loaded (id bigint, name varchar(6), amount double, active bool, day date, "
                  "ts datetime(6), score bigint, note longtext)")
    _query(mysql, "INSERT INTO loaded (id, name) VALUES (0, 'keep')")
    mysql.commit()
    _csv(tmp_path / "in.csv", 20)  # 'name 10' is seven characters: LOAD DATA LOCAL would truncate it
    write_config(_config(mysql, mysql_dsn))
    result = cli("run", "load", "--no-progress", "--json")
    assert result.returncode == 1, result.stdout
    report = json.loads(result.stdout)["resources"][0]
    assert "Data truncated for column 'name'" in report["error"]
    assert report["retries"] == 0
    assert _query(mysql, "SELECT id, name FROM loaded") == [(0, "keep")]


def test_full_refresh_killed_half_way_keeps_the_old_table(tmp_path: Path, cli: CliRunner, mysql: Any,
                                                          mysql_dsn: str, write_config: Callable[[str], Path]) -> None:
    _csv(tmp_path / "small.csv", 500)
    _csv(tmp_path / "big.csv", 300_000, name="new")
    config = _config(mysql, mysql_dsn, csv="small.csv")
    write_config(config)
    _ok(cli("run", "refresh", "--no-progress"))
    old = _checksum(mysql, "refreshed")
    write_config(config.replace("path: small.csv", "path: big.csv"))
    proc = subprocess.Popen([sys.executable, "-m", "conduit_core", "run", "refresh", "--no-progress",
                             "--batch-size", "5000"], cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loading = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not loading:
        loading = bool(_query(mysql, "SELECT count(*) FROM information_schema.processlist "
                                     "WHERE info LIKE 'LOAD DATA%'")[0][0])
        assert _checksum(mysql, "refreshed") == old
        time.sleep(0.01)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert loading, "never saw LOAD DATA running"
    assert _checksum(mysql, "refreshed") == old
    _ok(cli("run", "refresh", "--no-progress"))
    assert _checksum(mysql, "refreshed")[:2] == (300_000, 300_000 * 300_001 // 2)


def test_binary_nested_and_special_values(tmp_path: Path, cli: CliRunner, mysql: Any, mysql_dsn: str,
                                          write_config: Callable[[str], Path]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "b": pa.array([b"\x00\xff", b"", None], pa.binary()),
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "s": pa.array(["NULL", "", None]),  # the string 'NULL' must stay a string
        "flag": pa.array([True, False, None]),
    })
    pq.write_table(table, tmp_path / "in.parquet")
    dsn = _config(mysql, mysql_dsn).split('dsn: "', 1)[1].split('"', 1)[0]
    write_config(f"""\
    sources: [{{name: p, type: parquet, path: in.parquet}}]
    destinations: [{{name: myd, type: mysql, dsn: "{dsn}"}}]
    resources: [{{name: odd, source: p, destination: myd, table: odd}}]
    """)
    _ok(cli("run", "--no-progress"))
    rows = _query(mysql, "SELECT id, HEX(b), tags, s, flag FROM odd ORDER BY id")
    assert [(r[0], r[1], json.loads(r[2]) if r[2] else None, r[3], r[4]) for r in rows] == [
        (1, "00FF", ["a", "b"], "NULL", 1), (2, "", [], "", 0), (3, None, None, None, None)]
