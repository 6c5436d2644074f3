"""PostgreSQL through `conduit run`, verified in the real server (each test in its own schema)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import CliRunner


def _csv(path: Path, rows: int, start: int = 1, name: str = "name") -> None:
    lines = ["id,name,amount,active,day,ts,score,note"]
    for i in range(start, start + rows):
        score = "" if i % 10 == 0 else str(i * 3)
        note = '""' if i % 7 == 0 else ("" if i % 5 == 0 else f'"{name} {i}, quoted ""x"""')
        lines.append(f"{i},{name} {i},{i}.{i % 100:02d},{str(i % 2 == 0).lower()},2024-01-{1 + i % 28:02d},"
                     f"2024-03-04 05:06:{i % 60:02d},{score},{note}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(pg: Any, postgres_dsn: str, extra_resources: str = "", **paths: str) -> str:
    return f"""\
sources:
  - {{name: csv, type: csv, path: {paths.get('csv', 'in.csv')}}}
  - {{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}, table: loaded}}
destinations:
  - {{name: pgd, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
  - {{name: lake, type: parquet, path: out.parquet}}
resources:
  - {{name: load, source: csv, destination: pgd, table: loaded}}
  - {{name: export, source: pg, destination: lake, mode: full_refresh}}
  - {{name: copy, source: pg, destination: pgd, table: copied, mode: merge, primary_key: [id]}}
  - {{name: refresh, source: csv, destination: pgd, table: refreshed, mode: full_refresh}}
{extra_resources}"""


_CHECKSUM = """
SELECT count(*), sum(id), md5(string_agg(concat_ws('|', id, name, amount, active, day, ts, score,
       coalesce(note, '<null>')), ',' ORDER BY id)) FROM {table}
"""


# This test's own running COPY: a backend of an earlier, killed test may still linger with a COPY as
# its last statement, so the schema (unique per test) and the state narrow it down.
_ACTIVE_COPY = ("SELECT {what} FROM pg_stat_activity WHERE application_name = 'conduit' AND state = 'active' "
                "AND query LIKE 'COPY%%' AND query LIKE %s")


def _checksum(pg: Any, table: str) -> tuple[Any, ...]:
    return tuple(pg.execute(_CHECKSUM.format(table=table)).fetchone())


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_csv_to_postgres_to_parquet_and_postgres(tmp_path: Path, cli: CliRunner, pg: Any, postgres_dsn: str,
                                                 write_config: Callable[[str], Path]) -> None:
    rows = 20_000
    _csv(tmp_path / "in.csv", rows)
    write_config(_config(pg, postgres_dsn))
    _ok(cli("run", "load", "--batch-size", "3000", "--no-progress"))
    count, id_sum, _ = _checksum(pg, "loaded")
    assert (count, id_sum) == (rows, rows * (rows + 1) // 2)
    assert pg.execute("SELECT count(*) FROM loaded WHERE note = ''").fetchone() == (rows // 7,)
    assert pg.execute("SELECT count(*) FROM loaded WHERE note IS NULL").fetchone() == (rows // 5 - rows // 35,)
    assert pg.execute("SELECT note FROM loaded WHERE id = 1").fetchone() == ('name 1, quoted "x"',)
    assert pg.execute("SELECT count(*) FROM loaded WHERE score IS NULL").fetchone() == (rows // 10,)

    _ok(cli("run", "export", "copy", "--batch-size", "3000", "--no-progress"))
    assert _checksum(pg, "copied") == _checksum(pg, "loaded")
    parquet = pq.read_table(tmp_path / "out.parquet").sort_by("id")
    assert parquet.num_rows == rows
    expected = pg.execute("SELECT id, name, amount, active, day, ts, score, note FROM loaded ORDER BY id").fetchall()
    got = list(zip(*(parquet.column(c).to_pylist() for c in parquet.column_names), strict=True))
    assert got == [tuple(r) for r in expected]

    # Merge is idempotent: a second identical run leaves the table exactly as it was.
    before = _checksum(pg, "copied")
    _ok(cli("run", "copy", "--no-progress"))
    assert _checksum(pg, "copied") == before
    keys = pg.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                      "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'copied'::regclass AND i.indisprimary")
    assert [r[0] for r in keys] == ["id"]


def test_type_round_trip(tmp_path: Path, cli: CliRunner, pg: Any, postgres_dsn: str,
                         write_config: Callable[[str], Path]) -> None:
    pg.execute("""
        CREATE TABLE types (
          id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(38,10), n0 numeric(12,0), f4 float4, f8 float8,
          b bool, t text, v varchar(20), d date, ts timestamp, tz timestamptz, u uuid, j jsonb, jt json,
          by bytea, arr int4[], tarr text[])""")
    pg.execute("""
        INSERT INTO types VALUES
        (1, 32767, -2147483648, 9223372036854775807, 1234567890123456789012345678.1234567890, 999999999999,
         1.5, 'NaN', true, '', '', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-06-01 12:00:00+02',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"k": "v"}', '\\x00ff10', '{1,NULL,3}',
         '{"x","y z"}'),
        (2, -32768, 0, -1, -0.0000000001, 0, '-Infinity', 'Infinity', false, 'ünïcødé ✓', 'x',
         '0001-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999999+00', NULL, 'null', '[]', '\\x', '{}', '{}'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL)""")
    write_config(f"""\
    sources: [{{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}, table: types}}]
    destinations:
      - {{name: pgd, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
      - {{name: lake, type: parquet, path: types.parquet}}
    resources:
      - {{name: copy, source: pg, destination: pgd, table: types_copy}}
      - {{name: export, source: pg, destination: lake}}
    """)
    _ok(cli("run", "--no-progress"))
    created = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = current_schema() AND table_name = 'types_copy'").fetchall())
    assert created["n"] == "numeric" and created["tz"] == "timestamp with time zone"  # noqa: PT018
    assert created["u"] == "uuid" and created["arr"] == "ARRAY" and created["by"] == "bytea"  # noqa: PT018
    # json/jsonb arrive as their text (jsonb's normalised form), stored as text.
    assert created["j"] == "text"
    compare = ", ".join(["id", "i2", "i4", "i8", "n", "n0", "f4", "f8", "b", "t", "v", "d", "ts", "tz", "u",
                         "j::text", "jt::text", "by", "arr", "tarr"])
    for left, right in (("types", "types_copy"), ("types_copy", "types")):
        diff = pg.execute(f"SELECT {compare} FROM {left} EXCEPT ALL SELECT {compare} FROM {right}").fetchall()
        assert diff == [], (left, right, diff)
    table = pq.read_table(tmp_path / "types.parquet").sort_by("id")
    assert table.schema.field("n").type == pa.decimal128(38, 10)
    assert table.column("n").to_pylist()[0] == Decimal("1234567890123456789012345678.1234567890")
    f8 = table.column("f8").to_pylist()
    assert f8[0] != f8[0] and f8[1] == float("inf") and f8[2] is None  # noqa: PT018 - NaN != NaN
    assert table.column("t").to_pylist() == ["", "ünïcødé ✓", None]
    assert table.column("tz").type == pa.timestamp("us", "UTC")
    assert str(table.column("tz").to_pylist()[0]) == "2024-06-01 10:00:00+00:00"
    assert table.column("arr").to_pylist()[0] == [1, None, 3]


def test_identifiers_are_always_quoted(tmp_path: Path, cli: CliRunner, pg: Any, postgres_dsn: str,
                                       write_config: Callable[[str], Path]) -> None:
    pg.execute("CREATE TABLE users (id int)")
    pg.execute("INSERT INTO users VALUES (1)")
    header = ['"; DROP TABLE users; --', "with space", "UPPER", "ünï", 'quo"te']
    (tmp_path / "in.csv").write_text(",".join('"' + h.replace('"', '""') + '"' for h in header) + "\n1,2,3,4,5\n",
                                     encoding="utf-8")
    write_config(f"""\
    sources: [{{name: csv, type: csv, path: in.csv}}]
    destinations: [{{name: pgd, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}]
    resources:
      - {{name: evil, source: csv, destination: pgd, table: 'x"; DROP TABLE users; --', mode: merge,
         primary_key: ['"; DROP TABLE users; --']}}
    """)
    _ok(cli("run", "--no-progress"))
    _ok(cli("run", "--no-progress"))
    assert pg.execute("SELECT count(*) FROM users").fetchone() == (1,)
    columns = [r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'x\"; DROP TABLE users; --' ORDER BY ordinal_position")]
    assert columns == header
    assert pg.execute('SELECT "UPPER", "ünï" FROM "x""; DROP TABLE users; --"').fetchall() == [(3, 4)]


def test_full_refresh_is_atomic_for_readers_and_survives_a_kill(tmp_path: Path, pg: Any, postgres_dsn: str,
                                                                 write_config: Callable[[str], Path],
                                                                 cli: CliRunner) -> None:
    _csv(tmp_path / "small.csv", 1000)
    _csv(tmp_path / "big.csv", 400_000, name="new")
    config = _config(pg, postgres_dsn, csv="small.csv")
    write_config(config)
    _ok(cli("run", "refresh", "--no-progress"))
    old = _checksum(pg, "refreshed")
    write_config(config.replace("path: small.csv", "path: big.csv"))

    def run_and_watch(kill: bool) -> set[int]:
        proc = subprocess.Popen([sys.executable, "-m", "conduit_core", "run", "refresh", "--no-progress",
                                 "--batch-size", "5000"], cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen: set[int] = set()
        copying = False
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            seen.add(pg.execute("SELECT count(*) FROM refreshed").fetchone()[0])
            active = pg.execute(_ACTIVE_COPY.format(what="count(*)"), (f"%{pg.schema}%",)).fetchone()[0]
            copying = copying or bool(active)
            if kill and copying:
                time.sleep(0.3)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.02)
        proc.communicate(timeout=120)
        assert copying, "never saw the COPY running"
        return seen

    assert run_and_watch(kill=True) <= {1000}
    # Wait for the server to notice the dead client and roll back.
    for _ in range(100):
        if not pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'conduit'").fetchone()[0]:
            break
        time.sleep(0.1)
    assert _checksum(pg, "refreshed") == old
    assert run_and_watch(kill=False) <= {1000, 400_000}
    assert _checksum(pg, "refreshed")[:2] == (400_000, 400_000 * 400_001 // 2)
    leftovers = pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
                           "AND tablename LIKE '_conduit_stage_%'").fetchone()
    assert leftovers == (0,)


def test_terminated_backend_is_retried_and_loads_exactly_once(tmp_path: Path, pg: Any, postgres_dsn: str,
                                                              write_config: Callable[[str], Path]) -> None:
    """The backend dies after a checkpoint committed: the retry resumes there and no row is doubled."""
    rows = 300_000
    _csv(tmp_path / "in.csv", rows)
    write_config(_config(pg, postgres_dsn).replace(
        "table: loaded}\n  - {name: export",
        "table: loaded, retries: {initial_wait: 0.2}, checkpoint: {every_rows: 50000}}\n  - {name: export"))
    proc = subprocess.Popen([sys.executable, "-m", "conduit_core", "run", "load", "--no-progress", "--json",
                             "--batch-size", "5000"], cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    terminated = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and not terminated and time.monotonic() < deadline:
        checkpointed = pg.execute("SELECT to_regclass('_conduit_checkpoints') IS NOT NULL").fetchone()[0]
        if checkpointed:
            row = pg.execute(_ACTIVE_COPY.format(what="pg_terminate_backend(pid)") + " LIMIT 1",
                             (f"%{pg.schema}%",)).fetchone()
            terminated = bool(row and row[0])
        time.sleep(0.005)
    out, err = proc.communicate(timeout=300)
    assert terminated, "the load finished before its backend could be terminated"
    assert proc.returncode == 0, out + err
    report = json.loads(out)["resources"][0]
    assert report["retries"] >= 1
    assert "attempt 1 of 3 failed" in err
    resumed = re.search(r"attempt 2 resumes after the (\d+) rows its run has committed", err)
    assert resumed, err
    assert int(resumed.group(1)) >= 50_000
    assert report["rows_written"] == rows
    assert _checksum(pg, "loaded")[:2] == (rows, rows * (rows + 1) // 2)
    assert pg.execute("SELECT count(*), count(DISTINCT id) FROM loaded").fetchone() == (rows, rows)


def test_data_errors_are_not_retried_and_leave_the_table(tmp_path: Path, cli: CliRunner, pg: Any, postgres_dsn: str,
                                                         write_config: Callable[[str], Path]) -> None:
    pg.execute("CREATE TABLE loaded (id bigint, name varchar(6), amount float8, active bool, day date, "
               "ts timestamp, score bigint, note text)")
    pg.execute("INSERT INTO loaded (id, name) VALUES (0, 'keep')")
    _csv(tmp_path / "in.csv", 20)  # 'name 10' is seven characters
    write_config(_config(pg, postgres_dsn))
    result = cli("run", "load", "--no-progress", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)["resources"][0]
    assert report["retries"] == 0
    assert "22001" in report["error"]
    assert "character varying(6)" in report["error"]
    assert "Traceback" not in result.stderr
    assert pg.execute("SELECT id, name FROM loaded").fetchall() == [(0, "keep")]


def test_passwords_never_reach_output_or_manifest(tmp_path: Path, cli: CliRunner,
                                                  write_config: Callable[[str], Path]) -> None:
    _csv(tmp_path / "in.csv", 5)
    write_config("""\
    sources: [{name: csv, type: csv, path: in.csv}]
    destinations:
      - {name: pgd, type: postgresql, host: 127.0.0.1, port: 1, database: x, user: u, password: "${PGSECRET}",
         connect_timeout: 2}
    resources: [{name: load, source: csv, destination: pgd}]
    """)
    result = cli("run", "--no-progress", env={"PGSECRET": "s3cr3t-Pa55"})
    assert result.returncode == 6  # preflight cannot connect
    assert "connection failed" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    manifests = list((tmp_path / ".conduit").rglob("*"))
    assert manifests
    for path in manifests:
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path


def test_server_refusals_are_not_retried(tmp_path: Path, cli: CliRunner, postgres_dsn: str,
                                         write_config: Callable[[str], Path]) -> None:
    _csv(tmp_path / "in.csv", 5)
    base = postgres_dsn.rsplit("/", 1)[0]
    write_config(f"""\
    sources: [{{name: csv, type: csv, path: in.csv}}]
    destinations: [{{name: pgd, type: postgresql, dsn: "{base}/no_such_database_here"}}]
    resources: [{{name: load, source: csv, destination: pgd}}]
    """)
    result = cli("run", "--no-progress", "--json", "--skip-preflight")
    assert result.returncode == 1
    report = json.loads(result.stdout)["resources"][0]
    assert report["retries"] == 0
    assert "no_such_database_here" in report["error"]
    assert report["error_type"] == "FatalError"


def test_a_schema_that_does_not_exist_yet_is_created_by_the_load(tmp_path: Path, cli: CliRunner,
                                                                 write_config: Callable[[str], Path], pg: Any,
                                                                 postgres_dsn: str) -> None:
    """Preflight failed with 'unexpected ProgrammingError: schema ... does not exist' (reported as a bug) although
    the load itself creates the schema."""
    schema = f"{pg.schema}_new"
    _csv(tmp_path / "in.csv", 25)
    write_config(f"""\
    sources: [{{name: csv, type: csv, path: in.csv}}]
    destinations: [{{name: pgd, type: postgresql, dsn: "{postgres_dsn}", schema: {schema}}}]
    resources: [{{name: items, source: csv, destination: pgd}}]
    """)
    try:
        validated = cli("validate")
        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert "target will be created" in validated.stdout
        result = cli("run", "--no-progress")
        assert result.returncode == 0, result.stdout + result.stderr
        assert pg.execute(f'SELECT count(*), count(DISTINCT id) FROM "{schema}".items').fetchone() == (25, 25)
    finally:
        pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
