"""Schema drift against real DuckDB, SQLite, PostgreSQL and MySQL: each scenario under each mode.

A first load creates the table from version 1 of a CSV; version 2 drifts. For
each (database, scenario, mode) the test checks the exit code of
`schema-compare --against destination`, runs the load, and reads the real
table back: its columns, its row count and the values of the new rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conduit_core.cli.schema_cmd import compare_command
from conduit_core.config.loader import load_config
from conduit_core.engine.results import Status
from conduit_core.engine.runner import RunOptions, run


@dataclass(frozen=True)
class Scenario:
    v1: str  # CSV header + the column expressions of each row, in terms of i
    v2: str
    compare_exit: int  # schema-compare --against destination before loading v2
    #: per mode: None = the load must fail and leave the table as it was; else the columns afterwards
    columns: dict[str, list[str] | None]
    declared_v1: str = ""
    declared_v2: str = ""


SCENARIOS = {
    "add_column": Scenario("id,name,amount", "id,name,amount,extra", 3,
                           {"manual": None, "auto": ["id", "name", "amount", "extra"],
                            "warn": ["id", "name", "amount"]}),
    "drop_column": Scenario("id,name,amount", "id,amount", 4,
                            {"manual": None, "auto": ["id", "name", "amount"], "warn": ["id", "name", "amount"]}),
    "widen_type": Scenario("id,name,count", "id,name,count_double", 3,
                           {"manual": None, "auto": ["id", "name", "count"], "warn": None}),
    "narrow_type": Scenario("id,name,amount", "id,name,amount_int", 3,
                            {"manual": None, "auto": ["id", "name", "amount"], "warn": ["id", "name", "amount"]}),
    "rename_column": Scenario("id,name,amount", "id,full_name,amount", 4,
                              {"manual": None, "auto": ["id", "name", "amount", "full_name"],
                               "warn": ["id", "name", "amount"]}),
    "nullability": Scenario("id,name,amount", "id,name_nullable,amount", 3,
                            {"manual": None, "auto": ["id", "name", "amount"], "warn": None},
                            declared_v1="name: {type: string, nullable: false}",
                            declared_v2="name: {type: string, nullable: true}"),
}

VALUES: dict[str, Callable[[int], str]] = {
    "id": str, "name": lambda i: f"n{i}", "amount": lambda i: f"{i}.5", "extra": lambda i: f"x{i}",
    "count": str, "count_double": lambda i: f"{i}.25", "amount_int": str, "full_name": lambda i: f"f{i}",
    "name_nullable": lambda i: "" if i % 10 == 0 else f"n{i}",
}
HEADER = {"count_double": "count", "amount_int": "amount", "name_nullable": "name"}


def _write_csv(path: Path, spec: str, ids: range) -> None:
    columns = spec.split(",")
    lines = [",".join(HEADER.get(c, c) for c in columns)]
    lines += [",".join(VALUES[c](i) for c in columns) for i in ids]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Database:
    """The destination entry and ways to read the real table back."""

    def __init__(self, kind: str, tmp_path: Path, dsn: str = "", conn: Any = None, name: str = "") -> None:
        self.kind, self.tmp_path, self.dsn, self.conn, self.name = kind, tmp_path, dsn, conn, name

    def entry(self) -> str:
        if self.kind == "duckdb":
            return "{name: db, type: duckdb, path: out.duckdb}"
        if self.kind == "sqlite":
            return "{name: db, type: sqlite, path: out.sqlite}"
        if self.kind == "postgresql":
            return f'{{name: db, type: postgresql, dsn: "{self.dsn}", schema: {self.name}}}'
        return f'{{name: db, type: mysql, dsn: "{self.dsn}"}}'

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(str(self.tmp_path / "out.duckdb"), read_only=True) as con:
                return list(con.sql(sql).fetchall())
        if self.kind == "sqlite":
            con = sqlite3.connect(self.tmp_path / "out.sqlite")
            try:
                return list(con.execute(sql).fetchall())
            finally:
                con.close()
        if self.kind == "postgresql":
            return list(self.conn.execute(sql).fetchall())
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def columns(self) -> list[str]:
        if self.kind == "sqlite":
            return [r[1] for r in self.query("PRAGMA table_info(loaded)")]
        where = {"duckdb": "table_name = 'loaded'",
                 "postgresql": f"table_schema = '{self.name}' AND table_name = 'loaded'",
                 "mysql": "table_schema = DATABASE() AND table_name = 'loaded'"}[self.kind]
        return [r[0] for r in self.query(f"SELECT column_name FROM information_schema.columns WHERE {where} "
                                         "ORDER BY ordinal_position")]


@pytest.fixture(params=["duckdb", "sqlite", "postgresql", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param in ("duckdb", "sqlite"):
        yield Database(request.param, tmp_path)
    elif request.param == "postgresql":
        pg = request.getfixturevalue("pg")
        yield Database("postgresql", tmp_path, request.getfixturevalue("postgres_dsn"), pg, pg.schema)
    else:
        mysql = request.getfixturevalue("mysql")
        base = request.getfixturevalue("mysql_dsn").rsplit("/", 1)[0]
        yield Database("mysql", tmp_path, f"{base}/{mysql.database}", mysql, mysql.database)


def _config(tmp_path: Path, database: Database, mode: str, declared: str) -> Path:
    removed = "fill_null" if mode != "manual" else "fail"
    schema = f", schema: {{{declared}}}" if declared else ""
    path = tmp_path / "ingest.yml"
    path.write_text(f"""\
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{database.entry()}]
resources:
  - {{name: load, source: src, destination: db, table: loaded{schema},
     schema_evolution: {{mode: {mode}, on_column_removed: {removed}}}}}
""", encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["manual", "auto", "warn"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_drift(tmp_path: Path, database: Database, scenario: str, mode: str,
               capsys: pytest.CaptureFixture[str]) -> None:
    spec = SCENARIOS[scenario]
    _write_csv(tmp_path / "in.csv", spec.v1, range(1, 101))
    first = run(load_config(_config(tmp_path, database, mode, spec.declared_v1)), RunOptions())
    assert first.status is Status.SUCCESS, first.resources[0].error if first.resources else first.preflight
    before = database.columns()

    _write_csv(tmp_path / "in.csv", spec.v2, range(101, 201))
    config_file = _config(tmp_path, database, mode, spec.declared_v2)
    capsys.readouterr()
    code = compare_command(config_file, "load", against="destination", rows=1000, json_output=True)
    report = json.loads(capsys.readouterr().out)
    assert code == spec.compare_exit, report
    assert report["drift"] is True

    second = run(load_config(config_file), RunOptions(skip_preflight=True))
    expected = spec.columns[mode]
    if expected is None:
        assert second.status is Status.FAILED
        assert database.columns() == before
        assert database.query("SELECT count(*) FROM loaded") == [(100,)]
        return
    assert second.status is Status.SUCCESS, second.resources[0].error
    assert database.columns() == expected
    assert database.query("SELECT count(*), count(DISTINCT id) FROM loaded") == [(200, 200)]
    result = second.resources[0]
    altered = mode == "auto" and scenario in ("add_column", "widen_type", "rename_column", "nullability")
    assert bool(result.schema_changes) == altered, result.schema_changes  # DDL only where the target must change
    if altered:
        assert all(change["ddl"] for change in result.schema_changes)
    if scenario == "add_column" and mode == "auto":
        assert database.query("SELECT count(extra) FROM loaded") == [(100,)]
    if scenario in ("drop_column", "rename_column"):
        assert database.query("SELECT count(name) FROM loaded") == [(100,)]  # the new rows: NULL
    if scenario == "rename_column" and mode == "auto":
        assert database.query("SELECT count(full_name) FROM loaded") == [(100,)]
    if scenario == "widen_type":
        assert database.query("SELECT sum(count) FROM loaded WHERE id > 100") == [(pytest.approx(15050 + 25),)]
    if scenario == "narrow_type":
        total = database.query("SELECT sum(amount) FROM loaded")[0][0]
        assert float(total) == pytest.approx(sum(i + 0.5 for i in range(1, 101)) + sum(range(101, 201)))
    if scenario == "nullability":
        assert database.query("SELECT count(*) - count(name) FROM loaded") == [(10,)]


def test_preflight_reports_drift_of_every_resource_before_any_writes(tmp_path: Path) -> None:
    """Two resources drift (one manual, one with a removed column): preflight lists both, nothing runs."""
    _write_csv(tmp_path / "in.csv", "id,name,amount", range(1, 11))
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: db, type: duckdb, path: out.duckdb}]
resources:
  - {name: a, source: src, destination: db}
  - {name: b, source: src, destination: db, schema_evolution: {mode: auto}}
  - {name: c, source: src, destination: db, table: c_new}
""", encoding="utf-8")
    assert run(load_config(tmp_path / "ingest.yml"), RunOptions()).status is Status.SUCCESS
    _write_csv(tmp_path / "in.csv", "id,amount,extra", range(11, 21))
    result = run(load_config(tmp_path / "ingest.yml"), RunOptions())
    assert result.status is Status.FAILED
    assert result.resources == []
    assert result.preflight is not None
    failed = {(c["resource"], c["check"]) for c in result.preflight["checks"] if not c["ok"]}
    assert failed == {("a", "schema drift"), ("b", "schema drift"), ("c", "schema drift")}
    import duckdb

    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM a").fetchall() == [(10,)]
        assert "extra" not in [r[0] for r in con.sql("DESCRIBE b").fetchall()]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_declared_text_widens_a_varchar_column(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    """A user's varchar(6) column, and values that only fit when the column is text."""
    if kind == "postgresql":
        pg = request.getfixturevalue("pg")
        db = Database("postgresql", tmp_path, request.getfixturevalue("postgres_dsn"), pg, pg.schema)
        pg.execute("CREATE TABLE loaded (id bigint, name varchar(6))")
    else:
        mysql = request.getfixturevalue("mysql")
        db = Database("mysql", tmp_path, request.getfixturevalue("mysql_dsn").rsplit("/", 1)[0]
                      + f"/{mysql.database}", mysql, mysql.database)
        with mysql.cursor() as cur:
            cur.execute("CREATE TABLE loaded (id BIGINT, name VARCHAR(6))")
    (tmp_path / "in.csv").write_text("id,name\n1,a much longer name\n", encoding="utf-8")
    config = _config(tmp_path, db, "manual", "name: text")
    assert compare_command(config, "load", against="destination", rows=10, json_output=True) == 3
    assert run(load_config(config), RunOptions()).status is Status.FAILED  # manual: preflight stops it
    result = run(load_config(_config(tmp_path, db, "auto", "name: text")), RunOptions())
    assert result.status is Status.SUCCESS, result.resources[0].error if result.resources else result.preflight
    assert result.resources[0].schema_changes[0]["auto_action"] == "widen name to text"
    assert db.query("SELECT name FROM loaded") == [("a much longer name",)]
