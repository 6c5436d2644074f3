"""`state: postgresql://...`: history, manifests, resource state and locks in a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRunner


@pytest.fixture
def state_schema(pg: Any) -> Any:
    schema = f"{pg.schema}_state"
    yield schema
    pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _config(tmp_path: Path, dsn: str, schema: str) -> None:
    lines = ["id,name"] + [f"{i},n{i}" for i in range(1, 101)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "ingest.yml").write_text(f"""\
state: {{dsn: "{dsn}", schema: {schema}}}
sources: [{{name: src, type: csv, path: in.csv}}]
destinations: [{{name: dst, type: ndjson, path: out.ndjson}}]
resources: [{{name: items, source: src, destination: dst, incremental_column: id}}]
""", encoding="utf-8")


def test_history_and_marks_live_in_postgresql(tmp_path: Path, cli: CliRunner, pg: Any, postgres_dsn: str,
                                              state_schema: str) -> None:
    _config(tmp_path, postgres_dsn, state_schema)
    first = cli("run", "--no-progress", "--json")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    assert not (tmp_path / ".conduit").exists(), "state went to the local directory"
    stored = pg.execute(f'SELECT status, rows_written, manifest FROM "{state_schema}".runs WHERE run_id = %s',
                        (run_id,)).fetchone()
    assert stored[:2] == ("success", 100)
    assert json.loads(stored[2])["resources"][0]["rows_written"] == 100
    state = json.loads(pg.execute(f'SELECT state FROM "{state_schema}".resource_state WHERE resource = %s',
                                  ("items",)).fetchone()[0])
    assert state["mark"]["value"] == "100"
    # A second machine with the same config would see the same history and mark:
    history = json.loads(cli("manifest", "--json").stdout)
    assert [r["run_id"] for r in history] == [run_id]
    shown = json.loads(cli("state", "show", "--json").stdout)
    assert shown[0]["high_water_mark"] == "100"
    again = cli("run", "--no-progress", "--json")
    assert again.returncode == 0, again.stderr
    lines = (tmp_path / "out.ndjson").read_text().splitlines()  # the mark held: nothing was loaded twice
    assert sorted(json.loads(line)["id"] for line in lines) == list(range(1, 101))


def test_a_held_lock_refuses_the_run(tmp_path: Path, cli: CliRunner, postgres_dsn: str,
                                     state_schema: str) -> None:
    """Another session (here: the test, as a stand-in for another machine) holds the resource's lock."""
    import psycopg

    from conduit_core.state.pg_store import _lock_key

    _config(tmp_path, postgres_dsn, state_schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_lock_key("items"),))
        refused = cli("run", "--no-progress")
        assert refused.returncode == 5
        assert "being run by another conduit process" in refused.stderr
    assert cli("run", "--no-progress").returncode == 0  # released with the other session


def test_state_url_must_be_postgresql(tmp_path: Path, cli: CliRunner) -> None:
    (tmp_path / "ingest.yml").write_text("""\
state: "mysql://root:hunter2@localhost/x"
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: dst, type: ndjson, path: out.ndjson}]
resources: [{name: items, source: src, destination: dst}]
""", encoding="utf-8")
    result = cli("validate")
    assert result.returncode == 2
    assert "state must be a PostgreSQL URL" in result.stderr
    assert "hunter2" not in result.stderr
