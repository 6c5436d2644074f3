"""Incremental loads through `conduit run`, checked by counting rows in the real destination."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import CliRunner


def _append_csv(path: Path, ids: range, bad: int | None = None) -> None:
    new = not path.exists()
    with path.open("a", encoding="utf-8") as handle:
        if new:
            handle.write("id,name,score\n")
        for i in ids:
            handle.write(f"{i},name {i},{'oops' if i == bad else i * 2}\n")


def _state(cli: CliRunner, resource: str) -> dict[str, Any]:
    states = json.loads(cli("state", "show", resource, "--json").stdout)
    assert len(states) == 1
    return dict(states[0])


def _duckdb_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return list(con.sql(sql).fetchall())


def test_three_csv_runs_load_each_row_once(tmp_path: Path, cli: CliRunner) -> None:
    """Typed comparison: the mark 9 (int) is below 10, although the text '10' sorts before '9'."""
    source = tmp_path / "in.csv"
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: dst, type: duckdb, path: out.duckdb}]
resources: [{name: items, source: src, destination: dst, incremental_column: id}]
""", encoding="utf-8")
    expected = 0
    for ids in (range(1, 10), range(10, 13), range(13, 2001)):
        _append_csv(source, ids)
        expected += len(ids)
        result = cli("run", "--no-progress", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)["resources"][0]
        assert report["rows_written"] == len(ids)
        assert report["rows_filtered"] == ids.start - 1  # the rows of earlier runs, read and skipped
        rows = _duckdb_rows(tmp_path / "out.duckdb", "SELECT count(*), count(DISTINCT id), max(id) FROM items")
        assert rows == [(expected, expected, ids.stop - 1)]
        state = _state(cli, "items")
        assert (state["high_water_mark"], state["mark_type"]) == (str(ids.stop - 1), "int64")
    assert cli("run", "--no-progress").returncode == 0  # nothing new: nothing loaded
    assert _duckdb_rows(tmp_path / "out.duckdb", "SELECT count(*) FROM items") == [(expected,)]


def test_a_failed_run_does_not_advance_the_mark(tmp_path: Path, cli: CliRunner) -> None:
    source = tmp_path / "in.csv"
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv, column_types: {score: int64}}]
destinations: [{name: dst, type: duckdb, path: out.duckdb}]
resources:
  - {name: items, source: src, destination: dst, incremental_column: id, checkpoint: {every_rows: 100}}
""", encoding="utf-8")
    _append_csv(source, range(1, 20_001))
    assert cli("run", "--no-progress").returncode == 0
    # The bad value sits blocks (of at least 1 MB) after the first new row, so checkpoints commit before the error.
    _append_csv(source, range(20_001, 130_001), bad=129_000)
    failed = cli("run", "--no-progress", "--batch-size", "500")
    assert failed.returncode == 1
    assert "oops" in failed.stderr
    state = _state(cli, "items")
    assert state["status"] == "in_progress"
    assert state["high_water_mark"] == "20000"  # the mark of the last completed load
    committed = _duckdb_rows(tmp_path / "out.duckdb", "SELECT count(*), max(id) FROM items")[0]
    assert committed[0] == 20_000 + state["rows_committed"]
    assert 20_000 < committed[1] < 129_000  # checkpoints before the bad row stay committed

    source.write_text(source.read_text(encoding="utf-8").replace("oops", "58000"), encoding="utf-8")
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed the load of run" in resumed.stdout
    assert _duckdb_rows(tmp_path / "out.duckdb", "SELECT count(*), count(DISTINCT id) FROM items") == [
        (130_000, 130_000)]
    assert _state(cli, "items")["high_water_mark"] == "130000"


def test_postgresql_pushes_the_mark_down_as_a_parameter(tmp_path: Path, cli: CliRunner, pg: Any,
                                                        postgres_dsn: str) -> None:
    """Timestamps compare as timestamps; only new rows leave the server (nothing read is filtered)."""
    pg.execute("CREATE TABLE events (id bigint PRIMARY KEY, changed timestamptz NOT NULL, note text)")
    base = datetime(2024, 1, 1, tzinfo=UTC)

    def add(ids: range) -> None:
        with pg.cursor().copy("COPY events (id, changed, note) FROM STDIN") as copy:
            for i in ids:
                copy.write_row((i, base + timedelta(minutes=i), f"event {i}; DROP TABLE events --"))

    (tmp_path / "ingest.yml").write_text(f"""\
sources: [{{name: src, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}, table: events}}]
destinations: [{{name: dst, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}]
resources:
  - name: copy
    source: src
    destination: dst
    table: events_copy
    checkpoint_column: id
    incremental: {{column: changed, initial_value: "2024-01-01 00:05:00+00:00"}}
""", encoding="utf-8")
    add(range(1, 101))
    total = 95  # initial_value excludes minutes 1..5
    for run, ids in enumerate((range(101, 151), range(151, 152), range(152, 400))):
        result = cli("run", "--no-progress", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)["resources"][0]
        if run:  # the first run applies initial_value in the engine (its type is learned from the data)
            assert report["rows_filtered"] == 0
            assert report["rows_read"] == report["rows_written"]
        assert pg.execute("SELECT count(*), count(DISTINCT id) FROM events_copy").fetchone() == (total, total)
        add(ids)
        total += len(ids)
    assert cli("run", "--no-progress").returncode == 0
    assert pg.execute("SELECT count(*), count(DISTINCT id), min(id) FROM events_copy").fetchone() == (394, 394, 6)
    state = _state(cli, "copy")
    assert state["high_water_mark"].startswith("2024-01-01 06:39:00")
    assert state["mark_type"] == "timestamp[us, tz=UTC]"


def test_full_refresh_ignores_and_resets_the_mark(tmp_path: Path, cli: CliRunner) -> None:
    source = tmp_path / "in.csv"
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: dst, type: sqlite, path: out.sqlite}]
resources: [{name: items, source: src, destination: dst, incremental_column: id}]
""", encoding="utf-8")
    _append_csv(source, range(1, 51))
    assert cli("run", "--no-progress").returncode == 0
    _append_csv(source, range(51, 61))
    result = cli("run", "--full-refresh", "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resources"][0]["rows_written"] == 60
    import sqlite3

    con = sqlite3.connect(tmp_path / "out.sqlite")
    try:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchone() == (60, 60)
    finally:
        con.close()
    assert _state(cli, "items")["high_water_mark"] == "60"


def test_lookback_needs_merge(tmp_path: Path, cli: CliRunner) -> None:
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: dst, type: duckdb, path: out.duckdb}]
resources:
  - {name: items, source: src, destination: dst, incremental: {column: id, lookback: 5}}
""", encoding="utf-8")
    result = cli("validate")
    assert result.returncode == 2
    assert "lookback" in result.stderr
    assert "mode: merge" in result.stderr
