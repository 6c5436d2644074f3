"""SIGKILL a real `conduit run` at seeded random moments, then `--resume`: exactly the source's rows arrive.

Each load checkpoints every 2,000 rows (about 100 commits for 200k rows), so
a kill lands before, between or during commits. The destination is read back
in full and compared row for row with the source, never through the engine's
own counters.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

ROWS = 200_000
KILLS = 3


def _source_table() -> pa.Table:
    ids = pa.array(range(1, ROWS + 1), pa.int64())
    names = pa.array([f"name {i}, \"q\"" if i % 11 else f"line\nbreak {i}" for i in range(1, ROWS + 1)])
    values = pa.array([i * 0.25 for i in range(1, ROWS + 1)], pa.float64())
    # Whole seconds: a CSV reads them back as timestamp[s], which Parquet stores as milliseconds.
    seconds = pa.array([1_700_000_000 + i * 7 for i in range(1, ROWS + 1)], pa.int64())
    return pa.table({"id": ids, "name": names, "v": values, "ts": seconds.cast(pa.timestamp("s"))})


def _write_csv(path: Path) -> pa.Table:
    table = _source_table()
    pacsv.write_csv(table, path)
    return table


def _committed(state_db: Path, resource: str) -> int | None:
    """Rows committed by the in-progress load the state store's mirror shows (None: no checkpoint).
    A cheap signal to time kills by; the mirror may lag one commit behind."""
    if not state_db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT state FROM resource_state WHERE resource = ?", (resource,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    state = json.loads(row[0]) if row else None
    return int(state["rows_committed"]) if state and state["status"] == "in_progress" else None


def _checkpointed(state_db: Path, resource: str) -> bool:
    return _committed(state_db, resource) is not None


def _interrupted(tmp_path: Path, resource: str) -> bool:
    """Whether the destination holds an unfinished load (its own state is the truth: the mirror in the
    state store can lag one commit behind a kill)."""
    from conduit_core.config.loader import load_config
    from conduit_core.engine.runner import RunOptions, build_destination, write_target

    config = load_config(tmp_path / "ingest.yml")
    destination = build_destination(config, config.resource(resource))
    try:
        state = destination.read_state(write_target(config.resource(resource), RunOptions()))
    finally:
        destination.close()
    return state is not None and state.in_progress


def _conduit(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conduit_core", "run", *args, "--no-progress"], cwd=tmp_path,
                            env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _crash_and_resume(tmp_path: Path, resource: str, seed: int) -> int:
    """Kill runs of ``resource`` mid-load KILLS times, then resume to the end; return the mid-load kills."""
    rng = random.Random(seed)
    state_db = tmp_path / ".conduit" / "state.db"
    mid_load = 0
    finished = False
    for attempt in range(KILLS):
        before = _committed(state_db, resource) or 0
        proc = _conduit(tmp_path, resource, "--batch-size", "500", *(["--resume"] if attempt else []))
        started = time.monotonic()
        # Wait until this run has committed a checkpoint of its own, then kill at a random moment after.
        while proc.poll() is None and time.monotonic() - started < 60:
            if (_committed(state_db, resource) or 0) > before:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.kill()
        out, err = proc.communicate(timeout=60)
        if proc.returncode != -9:
            assert proc.returncode == 0, out + err
            finished = True  # before the kill: nothing left to resume (a new run would load it all again)
            break
        if not _interrupted(tmp_path, resource):
            finished = True  # killed after the last commit: the load is complete
            break
        mid_load += 1
        print(f"kill {attempt} after {time.monotonic() - started:.2f}s: mid-load, {_committed(state_db, resource)} "
              "rows committed")
    if not finished:
        final = _conduit(tmp_path, resource, "--resume", "--batch-size", "500")
        out, err = final.communicate(timeout=300)
        assert final.returncode == 0, out + err
    assert not _interrupted(tmp_path, resource)
    return mid_load


def _config(tmp_path: Path, destination: str, source: str = "{name: src, type: csv, path: in.csv}",
            extra: str = "") -> None:
    (tmp_path / "ingest.yml").write_text(f"""\
sources:
  - {source}
destinations:
  - {destination}
resources:
  - {{name: load, source: src, destination: dst, table: loaded, checkpoint: {{every_rows: 2000}}{extra}}}
""", encoding="utf-8")


def _assert_exact(actual: pa.Table, expected: pa.Table) -> None:
    """The same rows; columns the check reads back from a server are compared, the rest were loaded too."""
    expected = expected.select([c for c in expected.column_names if c in actual.column_names])
    actual = actual.select(expected.column_names).sort_by("id")
    assert actual.num_rows == expected.num_rows
    assert actual.column("id").equals(expected.column("id")), "ids lost or doubled"
    assert actual.equals(expected.cast(actual.schema)), "values differ"


@pytest.mark.parametrize("seed", [11, 29])
def test_csv_to_duckdb_survives_sigkill(tmp_path: Path, seed: int) -> None:
    import duckdb

    expected = _write_csv(tmp_path / "in.csv")
    _config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        _assert_exact(con.sql("SELECT * FROM loaded").to_arrow_table(), expected)
    assert mid_load >= 1


@pytest.mark.parametrize("seed", [5, 17])
def test_csv_to_parquet_survives_sigkill(tmp_path: Path, seed: int) -> None:
    import pyarrow.parquet as pq

    expected = _write_csv(tmp_path / "in.csv")
    _config(tmp_path, "{name: dst, type: parquet, path: out.parquet}")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    _assert_exact(pq.read_table(tmp_path / "out.parquet"), expected)
    # Only the record of the completed load stays beside the file (what --resume reads after a late kill).
    assert sorted(p.name for p in (tmp_path / ".out.parquet.conduit").iterdir()) == ["state.json"], \
        "part files left behind"
    assert mid_load >= 1


@pytest.mark.parametrize(("seed", "mode"), [(19, "append")])
def test_csv_to_csv_survives_sigkill(tmp_path: Path, seed: int, mode: str) -> None:
    """Appending to an existing file: its rows come first, the new ones once after them."""
    expected = _write_csv(tmp_path / "in.csv")
    head = expected.slice(0, 10)
    pacsv.write_csv(head, tmp_path / "out.csv")
    _config(tmp_path, "{name: dst, type: csv, path: out.csv}", extra=f", mode: {mode}")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    actual = pacsv.read_csv(tmp_path / "out.csv", parse_options=pacsv.ParseOptions(newlines_in_values=True))
    assert actual.slice(0, 10).equals(head)
    _assert_exact(actual.slice(10), expected)
    assert mid_load >= 1


def _pg_table(pg: Any, table: str) -> pa.Table:
    rows = pg.execute(f"SELECT id, name, v FROM {table}").fetchall()
    return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                     "v": pa.array([r[2] for r in rows], pa.float64())})


@pytest.mark.parametrize("seed", [3])
def test_csv_to_postgresql_survives_sigkill(tmp_path: Path, pg: Any, postgres_dsn: str, seed: int) -> None:
    expected = _write_csv(tmp_path / "in.csv")
    _config(tmp_path, f'{{name: dst, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}')
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    _assert_exact(_pg_table(pg, "loaded"), expected)
    assert mid_load >= 1


@pytest.mark.parametrize(("seed", "mode"), [(7, "append"), (13, "full_refresh"), (23, "merge")])
def test_postgresql_to_postgresql_survives_sigkill(tmp_path: Path, pg: Any, postgres_dsn: str, seed: int,
                                                   mode: str) -> None:
    expected = _source_table()
    pg.execute("CREATE TABLE source (id bigint PRIMARY KEY, name text, v float8, ts timestamp)")
    with pg.cursor().copy("COPY source (id, name, v, ts) FROM STDIN") as copy:
        for row in zip(*(expected.column(c).to_pylist() for c in ("id", "name", "v", "ts")), strict=True):
            copy.write_row(row)
    if mode != "append":  # the old contents must be replaced (full_refresh) or updated (merge)
        pg.execute("CREATE TABLE loaded (id bigint PRIMARY KEY, name text, v float8, ts timestamp)")
        pg.execute("INSERT INTO loaded SELECT id, 'old', -1, NULL FROM generate_series(1, 1000, 3) AS id")
    dsn = f'"{postgres_dsn}"'
    _config(tmp_path, f"{{name: dst, type: postgresql, dsn: {dsn}, schema: {pg.schema}}}",
            source=f"{{name: src, type: postgresql, dsn: {dsn}, schema: {pg.schema}, table: source}}",
            extra=f", checkpoint_column: id, mode: {mode}, primary_key: [id]")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    _assert_exact(_pg_table(pg, "loaded"), expected)
    leftovers = pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
                           "AND tablename LIKE '_conduit_stage_%'").fetchone()
    assert leftovers == (0,)
    assert mid_load >= 1


def test_resume_is_required_to_continue_and_reset_discards(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """A killed load leaves a checkpoint: a plain run refuses (exit 5), `state reset` discards it."""
    import duckdb

    _write_csv(tmp_path / "in.csv")
    _config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}")
    proc = _conduit(tmp_path, "load", "--batch-size", "500")
    deadline = time.monotonic() + 60
    while proc.poll() is None and not _checkpointed(tmp_path / ".conduit" / "state.db", "load"):
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9, "the load finished before it could be killed"
    refused = cli("run", "--no-progress")
    assert refused.returncode == 5
    assert "has a checkpoint from run" in refused.stderr
    assert "--resume" in refused.stderr
    assert "Traceback" not in refused.stderr
    shown = cli("state", "show", "--json")
    state = json.loads(shown.stdout)[0]
    assert state["status"] == "in_progress"
    assert state["rows_committed"] > 0
    reset = cli("state", "reset", "load")
    assert reset.returncode == 0, reset.stderr
    assert "stay in the destination" in reset.stdout
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM _conduit_checkpoints").fetchall() == [(0,)]
    assert json.loads(cli("state", "show", "--json").stdout) == []
    full = cli("run", "--full-refresh", "--no-progress", "--json")
    assert full.returncode == 0, full.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*), count(DISTINCT id) FROM loaded").fetchall() == [(ROWS, ROWS)]


def test_a_second_run_of_the_same_resource_refuses_immediately(tmp_path: Path, cli: Callable[..., Any],
                                                               pg: Any, postgres_dsn: str) -> None:
    """The first run reads a deliberately slow query (pg_sleep), so it holds its lock for seconds."""
    slow = "SELECT g AS id, pg_sleep(0.02) IS NULL AS slept FROM generate_series(1, 200) AS g"
    _config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}",
            source=f'{{name: src, type: postgresql, dsn: "{postgres_dsn}", query: "{slow}"}}')
    first = _conduit(tmp_path, "load")
    lock = tmp_path / ".conduit" / "locks" / "load.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()):
        assert first.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.002)
    second = cli("run", "--no-progress")
    assert first.poll() is None, "the first run ended before the second one was refused"
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert second.returncode == 5, second.stdout + second.stderr
    assert "being run by another conduit process" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize(("seed", "mode"), [(31, "append"), (37, "full_refresh")])
def test_csv_to_mysql_survives_sigkill(tmp_path: Path, mysql: Any, mysql_dsn: str, seed: int, mode: str) -> None:
    expected = _write_csv(tmp_path / "in.csv")
    if mode == "full_refresh":  # the old contents must be replaced whole
        with mysql.cursor() as cur:
            cur.execute("CREATE TABLE loaded (id BIGINT, name TEXT, v DOUBLE, ts DATETIME)")
            cur.execute("INSERT INTO loaded VALUES (1, 'old', -1, NULL), (999999, 'old', -1, NULL)")
    dsn = mysql_dsn.rsplit("/", 1)[0] + f"/{mysql.database}"
    _config(tmp_path, f'{{name: dst, type: mysql, dsn: "{dsn}"}}', extra=f", mode: {mode}")
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    with mysql.cursor() as cur:
        cur.execute("SELECT id, name, v FROM loaded")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name LIKE '\\_conduit\\_%%' AND table_name <> '_conduit_checkpoints'")
        leftovers = cur.fetchone()
    actual = pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                       "v": pa.array([r[2] for r in rows], pa.float64())})
    _assert_exact(actual, expected)
    assert leftovers == (0,)
    assert mid_load >= 1


@pytest.mark.parametrize("seed", [41])
def test_dead_letter_rows_survive_sigkill_exactly_once(tmp_path: Path, seed: int) -> None:
    """Every 100th row fails a check: after kills and --resume, the DLQ files hold each of them once."""
    import duckdb

    expected = _write_csv(tmp_path / "in.csv")
    _config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}",
            extra=', quality_checks: [{check: expression, sql: "id % 100 <> 0"}]')
    mid_load = _crash_and_resume(tmp_path, "load", seed)
    good = expected.filter(pa.array([i % 100 != 0 for i in expected.column("id").to_pylist()]))
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        _assert_exact(con.sql("SELECT * FROM loaded").to_arrow_table(), good)
    rejected = [json.loads(line)["record"]["id"]
                for path in (tmp_path / ".conduit" / "errors" / "load").glob("*.jsonl")
                for line in path.read_text().splitlines()]
    assert sorted(rejected) == list(range(100, ROWS + 1, 100))
    assert mid_load >= 1
