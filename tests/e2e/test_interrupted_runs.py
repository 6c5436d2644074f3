"""Runs that do not finish: killed between resources or after a final commit, stopped by SIGTERM or SIGINT, or
resumed over a source that changed. Every destination is read back and compared with the source."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.conftest import CliRunner
from tests.e2e.test_crash_resume import ROWS, _assert_exact, _committed, _conduit, _source_table, _write_csv

#: The destinations every crash test runs against.
KINDS = ["duckdb", "parquet", "postgresql", "mysql"]


def _wait(predicate: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _manifests(cli: CliRunner) -> list[dict[str, Any]]:
    shown = cli("manifest", "--json", "--last", "20")
    assert shown.returncode == 0, shown.stderr
    return list(json.loads(shown.stdout))


def _manifest(tmp_path: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((tmp_path / ".conduit" / "runs" / run_id / "manifest.json").read_text()))


def _duck(path: Path, sql: str) -> pa.Table:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).to_arrow_table()


@pytest.mark.parametrize("kind", KINDS)
def test_resume_skips_the_resources_an_interrupted_run_completed(tmp_path: Path, cli: CliRunner, kind: str,
                                                                 request: pytest.FixtureRequest) -> None:
    """Two resources; killed while the second loads. --resume used to load the first (append) again: 200,000 rows
    became 400,000. Now the first is skipped and says so, the second continues from its checkpoint."""
    expected = _write_csv(tmp_path / "in.csv")
    destination, read_back = _destination(kind, tmp_path, request)
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{destination}]
resources:
  - {{name: first, source: src, destination: dst, table: one, checkpoint: {{every_rows: 2000}}}}
  - {{name: second, source: src, destination: dst, table: two, checkpoint: {{every_rows: 2000}}}}
""", encoding="utf-8")
    proc = _conduit(tmp_path, "--batch-size", "500")
    state_db = tmp_path / ".conduit" / "state.db"
    _wait(lambda: (_committed(state_db, "second") or 0) > 0, proc, "the second resource's first checkpoint")
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads(resumed.stdout)
    by_name = {r["resource"]: r for r in report["resources"]}
    assert by_name["first"]["status"] == "skipped"
    assert by_name["first"]["completed_in"] == report["resumes"]
    assert by_name["second"]["resumed_from"] == report["resumes"]
    for resource, table in (("first", "one"), ("second", "two")):
        _assert_exact(read_back(resource, table), expected)
    killed = _manifest(tmp_path, report["resumes"])
    assert (killed["status"], killed["interrupted"], killed["resumed_by"]) == ("interrupted", "killed",
                                                                               report["run_id"])
    statuses = {r["resource"]: r["status"] for r in killed["resources"]}
    assert statuses == {"first": "success", "second": "interrupted"}
    assert [r["run_id"] for r in _manifests(cli)[:2]] == [report["run_id"], killed["run_id"]]
    again = cli("run", "--resume", "--no-progress", "--json")  # nothing is left to resume: a plain run
    assert json.loads(again.stdout)["resumes"] is None


_PAUSE_AFTER_COMMIT = """\
    import os, sys, time
    from conduit_core.state.store import StateStore
    recorded = StateStore.record_schema
    def pause(self, *args, **kwargs):  # called once the load's final commit has landed
        sys.stderr.write("FINAL COMMIT DONE\\n"); sys.stderr.flush()
        time.sleep(120)
        return recorded(self, *args, **kwargs)
    StateStore.record_schema = pause
    from conduit_core.cli.app import main
    sys.argv = ["conduit", *sys.argv[1:]]
    main()
"""


@pytest.mark.parametrize("kind", KINDS)
def test_a_kill_after_the_final_commit_is_not_loaded_again(tmp_path: Path, cli: CliRunner, kind: str,
                                                           request: pytest.FixtureRequest) -> None:
    """Fault injection (said here): a wrapper around the real CLI pauses right after the final commit, where the
    test kills it. The destination said complete, the history had no record, and --resume appended it all again."""
    expected = _write_csv(tmp_path / "in.csv")
    destination, read_back = _destination(kind, tmp_path, request)
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{destination}]
resources: [{{name: load, source: src, destination: dst, table: loaded, mode: append}}]
""", encoding="utf-8")
    (tmp_path / "paused.py").write_text(textwrap.dedent(_PAUSE_AFTER_COMMIT), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "paused.py", "run", "--no-progress"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and "FINAL COMMIT DONE" not in line:
        line = proc.stderr.readline()
    assert "FINAL COMMIT DONE" in line
    proc.kill()
    proc.communicate()
    resumed = cli("run", "--resume", "--no-progress", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resources"][0]["status"] == "skipped"
    assert report["resources"][0]["completed_in"] == report["resumes"]
    _assert_exact(read_back("load", "loaded"), expected)
    killed = _manifest(tmp_path, report["resumes"])
    assert killed["status"] == "interrupted"
    assert killed["resources"][0]["status"] == "success"
    assert killed["resources"][0]["rows_written"] == ROWS
    assert "final commit had landed" in killed["resources"][0]["note"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_load_with_dead_letter_rows_and_declared_decimals_resumes(tmp_path: Path, cli: CliRunner, kind: str,
                                                                           request: pytest.FixtureRequest) -> None:
    """The resumed reader was given the declared types (decimal(12,2)) instead of the ones it read with, and
    failed forever with 'is not a valid decimal128 number' on the first bad value."""
    table = _source_table()
    amounts = pa.array([f"{i}.25" if i % 500 else "n/a" for i in range(1, ROWS + 1)])
    pacsv.write_csv(table.append_column("amount", amounts), tmp_path / "in.csv")
    destination, read_back = _destination(kind, tmp_path, request)
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{destination}]
resources:
  - {{name: load, source: src, destination: dst, table: loaded, checkpoint: {{every_rows: 2000}},
     schema: {{amount: "decimal(12,2)"}}}}
""", encoding="utf-8")
    proc = _conduit(tmp_path, "--batch-size", "500")
    state_db = tmp_path / ".conduit" / "state.db"
    _wait(lambda: (_committed(state_db, "load") or 0) > 20_000, proc, "a few checkpoints")
    proc.kill()
    proc.communicate()
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    good = pa.array([i % 500 != 0 for i in range(1, ROWS + 1)])
    _assert_exact(read_back("load", "loaded"), table.filter(good))
    rejected = [json.loads(line)["record"]["id"] for path in (tmp_path / ".conduit" / "errors" / "load").glob("*.jsonl")
                for line in path.read_text().splitlines()]
    assert sorted(rejected) == list(range(500, ROWS + 1, 500))


def _signal_config(tmp_path: Path, destination: str) -> None:
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{destination}]
resources: [{{name: load, source: src, destination: dst, table: loaded, checkpoint: {{every_rows: 2000}}}}]
""", encoding="utf-8")


def _destination(kind: str, tmp_path: Path,
                 request: pytest.FixtureRequest) -> tuple[str, Callable[[str, str], pa.Table]]:
    """The destination entry for ``kind`` and a function that reads a resource's rows back (resource, table)."""
    if kind == "duckdb":
        return "{name: dst, type: duckdb, path: out.duckdb}", lambda _, table: _duck(tmp_path / "out.duckdb",
                                                                                     f"SELECT * FROM {table}")
    if kind == "parquet":  # a directory: one file per resource
        return "{name: dst, type: parquet, path: out}", lambda resource, _: pq.read_table(
            tmp_path / "out" / f"{resource}.parquet")
    if kind == "postgresql":
        pg, dsn = request.getfixturevalue("pg"), request.getfixturevalue("postgres_dsn")

        def read_pg(_: str, table: str) -> pa.Table:
            rows = pg.execute(f"SELECT id, name, v FROM {table}").fetchall()
            return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                             "v": pa.array([r[2] for r in rows], pa.float64())})

        return f'{{name: dst, type: postgresql, dsn: "{dsn}", schema: {pg.schema}}}', read_pg
    mysql, dsn = request.getfixturevalue("mysql"), request.getfixturevalue("mysql_dsn")

    def read_mysql(_: str, table: str) -> pa.Table:
        with mysql.cursor() as cur:
            cur.execute(f"SELECT id, name, v FROM {table}")
            rows = cur.fetchall()
        return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                         "v": pa.array([r[2] for r in rows], pa.float64())})

    url = dsn.rsplit("/", 1)[0] + f"/{mysql.database}"
    return f'{{name: dst, type: mysql, dsn: "{url}"}}', read_mysql


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_load_at_its_last_checkpoint(tmp_path: Path, cli: CliRunner, kind: str, sig: int,
                                                        request: pytest.FixtureRequest) -> None:
    """SIGTERM was not handled (exit -15, no history) and SIGINT was racy (ignored, 'Query interrupted', or a
    PostgreSQL COPY left idle in transaction). Both now stop within seconds, exit 143/130, record the run as
    interrupted, and --resume finishes with exactly the source's rows."""
    expected = _write_csv(tmp_path / "in.csv")
    destination, read_back = _destination(kind, tmp_path, request)
    _signal_config(tmp_path, destination)
    proc = _conduit(tmp_path, "--batch-size", "500")
    state_db = tmp_path / ".conduit" / "state.db"
    _wait(lambda: (_committed(state_db, "load") or 0) > 0, proc, "the first checkpoint")
    proc.send_signal(sig)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), out + err
    assert stopped_after < 15, stopped_after
    assert "Traceback" not in err
    assert f"Interrupted ({signal.Signals(sig).name})" in err
    latest = _manifests(cli)[0]
    assert (latest["status"], latest["resources"][0]["status"]) == ("interrupted", "interrupted")
    if kind == "postgresql":
        pg = request.getfixturevalue("pg")
        idle = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'conduit' "
                          "AND state LIKE 'idle in transaction%'").fetchone()
        assert idle == (0,)
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_exact(read_back("load", "loaded"), expected)


def test_a_second_signal_ends_the_process_at_once(tmp_path: Path, pg: Any, postgres_dsn: str) -> None:
    """The load is stuck where no batch boundary comes: its CREATE TABLE waits for a table of the same name that
    the test creates in a transaction it keeps open. The first SIGTERM waits for a safe point; the second ends
    the process, and the server rolls the load back."""
    import psycopg

    _write_csv(tmp_path / "in.csv")
    _signal_config(tmp_path, f'{{name: dst, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}')
    blocker = psycopg.connect(postgres_dsn)
    try:
        blocker.execute(f'CREATE TABLE "{pg.schema}".loaded (id bigint)')  # uncommitted: the name is taken
        proc = _conduit(tmp_path, "--batch-size", "500", "--skip-preflight")
        deadline = time.monotonic() + 30
        while not pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'conduit' "
                             "AND wait_event_type = 'Lock'").fetchone()[0]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the load never waited for the lock"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert proc.poll() is None, "the first signal should wait for a safe point"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 143, out + err
        assert "SIGTERM again: stopping now" in err
    finally:
        blocker.rollback()
        blocker.close()


def _killed_mid_load(tmp_path: Path, rows_past: int = 20_000) -> None:
    proc = _conduit(tmp_path, "--batch-size", "500")
    state_db = tmp_path / ".conduit" / "state.db"
    _wait(lambda: (_committed(state_db, "load") or 0) > rows_past, proc, "a few checkpoints")
    proc.kill()
    proc.communicate()


@pytest.mark.parametrize("change", ["prepend", "truncate", "new_file_before"])
def test_a_source_changed_since_the_checkpoint_refuses_to_resume(tmp_path: Path, cli: CliRunner,
                                                                 change: str) -> None:
    """Prepending rows lost some and doubled others, a truncated file left stale rows, and both exited 0."""
    (tmp_path / "in").mkdir()
    expected = _write_csv(tmp_path / "in" / "b.csv")
    _signal_config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}")
    config = (tmp_path / "ingest.yml").read_text().replace("path: in.csv", "path: in/*.csv")
    (tmp_path / "ingest.yml").write_text(config, encoding="utf-8")
    _killed_mid_load(tmp_path)
    source = tmp_path / "in" / "b.csv"
    original = source.read_bytes()
    header, _, body = original.partition(b"\n")
    if change == "prepend":
        source.write_bytes(header + b"\n" + b'0,"new row",0.0,2023-01-01 00:00:00\n' + body)
    elif change == "truncate":
        source.write_bytes(original[:original.index(b"\n", len(original) // 20) + 1])
    else:
        (tmp_path / "in" / "a.csv").write_bytes(header + b"\n" + b'0,"new file",0.0,2023-01-01 00:00:00\n')
    refused = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "changed since the checkpoint" in refused.stderr or "cut short since the checkpoint" in refused.stderr
    assert "conduit state reset" in refused.stderr
    # Put back as it was: the resume continues exactly.
    source.write_bytes(original)
    (tmp_path / "in" / "a.csv").unlink(missing_ok=True)
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_exact(_duck(tmp_path / "out.duckdb", "SELECT * FROM loaded"), expected)


def test_a_row_fixed_after_the_checkpoint_resumes(tmp_path: Path, cli: CliRunner) -> None:
    """A change past the rows already loaded is safe: the row the checkpoint stopped after is still there."""
    table = _source_table()
    pacsv.write_csv(table, tmp_path / "in.csv")
    _signal_config(tmp_path, "{name: dst, type: duckdb, path: out.duckdb}")
    _killed_mid_load(tmp_path)
    text = (tmp_path / "in.csv").read_text(encoding="utf-8")
    (tmp_path / "in.csv").write_text(text.replace(f"\n{ROWS},", f"\n{ROWS}0,"), encoding="utf-8")
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ids = _duck(tmp_path / "out.duckdb", "SELECT id FROM loaded ORDER BY id").column("id").to_pylist()
    assert ids == [*range(1, ROWS), ROWS * 10]


def test_a_consume_once_source_is_read_once(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """Preflight read a plugin source's first batch and the load read it again: read() ran twice per run."""
    from conduit_core.config import load_config
    from conduit_core.config.models import ConnectorEntry
    from conduit_core.connectors.base import BaseSource
    from conduit_core.engine import runner
    from conduit_core.engine import session as session_module

    calls: list[int] = []

    class Queue(BaseSource):
        """A stand-in for a queue: every read() takes the next 10 messages, so a second read loses data."""

        def read(self, query: str | None = None) -> Any:
            calls.append(1)
            start = 10 * (len(calls) - 1)
            return iter([{"id": i} for i in range(start, start + 10)])

    config = load_config(write_config("""\
    sources: [{name: q, type: csv, path: unused.csv}]
    destinations: [{name: db, type: duckdb, path: out.duckdb}]
    resources: [{name: messages, source: q, destination: db, batch_size: 3}]
    """), env={})

    def build(_entry: ConnectorEntry) -> BaseSource:
        return Queue({})

    mp = pytest.MonkeyPatch()
    mp.setattr(session_module, "source_of", build)
    try:
        result = runner.run(config)
    finally:
        mp.undo()
    assert result.resources[0].status.value == "success", result.resources[0].error
    assert len(calls) == 1
    assert _duck(tmp_path / "out.duckdb", "SELECT id FROM messages ORDER BY id").column("id").to_pylist() == list(
        range(10))


_PAUSE_IN_PREFLIGHT = """\
    import sys, time
    from conduit_core.engine import runner
    checked = runner.preflight
    def pause(*args, **kwargs):
        sys.stderr.write("IN PREFLIGHT\\n"); sys.stderr.flush()
        time.sleep(120)
        return checked(*args, **kwargs)
    runner.preflight = pause
    from conduit_core.cli.app import main
    sys.argv = ["conduit", *sys.argv[1:]]
    main()
"""


def _two_resources(tmp_path: Path, extra: str = "") -> pa.Table:
    expected = _write_csv(tmp_path / "in.csv")
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{{name: dst, type: duckdb, path: out.duckdb}}]
resources:
  - {{name: first, source: src, destination: dst, table: one, checkpoint: {{every_rows: 2000}}}}
  - {{name: second, source: src, destination: dst, table: two, checkpoint: {{every_rows: 2000}}}}
{extra}""", encoding="utf-8")
    proc = _conduit(tmp_path, "--batch-size", "500")
    _wait(lambda: (_committed(tmp_path / ".conduit" / "state.db", "second") or 0) > 0, proc,
          "the second resource's first checkpoint")
    proc.kill()
    proc.communicate()
    return expected


def test_a_resume_killed_before_it_loads_keeps_the_chain(tmp_path: Path, cli: CliRunner) -> None:
    """Fault injection (said here): a wrapper pauses the second --resume in preflight, where it is killed. The
    third --resume must still skip `first` (completed in the first run), not load it a second time."""
    expected = _two_resources(tmp_path)
    (tmp_path / "paused.py").write_text(textwrap.dedent(_PAUSE_IN_PREFLIGHT), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "paused.py", "run", "--resume", "--no-progress", "--batch-size", "500"],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "NO_COLOR": "1"})
    assert proc.stderr is not None
    while "IN PREFLIGHT" not in (line := proc.stderr.readline()):
        assert line, proc.communicate()
    proc.kill()
    proc.communicate()
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    statuses = {r["resource"]: r["status"] for r in json.loads(resumed.stdout)["resources"]}
    assert statuses == {"first": "skipped", "second": "success"}
    for table in ("one", "two"):
        _assert_exact(_duck(tmp_path / "out.duckdb", f"SELECT * FROM {table}"), expected)


def test_resuming_some_resources_leaves_the_rest_to_resume(tmp_path: Path, cli: CliRunner) -> None:
    """`conduit run second --resume` finishes one resource; the interrupted run stays open for the others, and a
    later --resume skips both completed ones and runs only the one never reached."""
    expected = _two_resources(tmp_path, extra="  - {name: third, source: src, destination: dst, table: three}\n")
    only_second = cli("run", "second", "--resume", "--no-progress", "--batch-size", "500")
    assert only_second.returncode == 0, only_second.stdout + only_second.stderr
    rest = cli("run", "--resume", "--no-progress", "--batch-size", "500", "--json")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    statuses = {r["resource"]: r["status"] for r in json.loads(rest.stdout)["resources"]}
    assert statuses == {"first": "skipped", "second": "skipped", "third": "success"}
    for table in ("one", "two", "three"):
        _assert_exact(_duck(tmp_path / "out.duckdb", f"SELECT * FROM {table}"), expected)


def test_a_signal_during_preflight_exits_as_interrupted(tmp_path: Path, cli: CliRunner, pg: Any,
                                                        postgres_dsn: str) -> None:
    """The source's first batch takes seconds (pg_sleep): a SIGINT then is an interruption (130), not a preflight
    problem (6)."""
    slow = "SELECT g AS id, pg_sleep(0.01) IS NULL AS slept FROM generate_series(1, 2000) AS g"
    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: postgresql, dsn: "{postgres_dsn}", query: "{slow}"}}]
destinations: [{{name: dst, type: duckdb, path: out.duckdb}}]
resources: [{{name: load, source: src, destination: dst}}]
""", encoding="utf-8")
    proc = _conduit(tmp_path)
    _wait(lambda: bool(pg.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.01)%' "
                                  "AND pid <> pg_backend_pid()").fetchone()[0]), proc, "the source's query")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "preflight found" not in err
    assert _manifests(cli)[0]["status"] == "interrupted"
