"""A load's state belongs to its resource *and* its target: two projects whose resources share a name never
share checkpoints or marks, and a state that belongs to another target is refused loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import CliRunner


def _project(folder: Path, table: str, destination: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 501)), encoding="utf-8")
    (folder / "ingest.yml").write_text(f"""\
sources: [{{name: s, type: csv, path: in.csv}}]
destinations: [{destination}]
resources: [{{name: orders, source: s, destination: d, table: {table}, incremental_column: id}}]
""", encoding="utf-8")
    return folder


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_two_projects_with_the_same_resource_name_keep_their_own_marks(tmp_path: Path, cli: CliRunner, kind: str,
                                                                      request: pytest.FixtureRequest) -> None:
    """The second project used to find the first one's mark (id 500), filter all 500 rows and exit 0."""
    if kind == "duckdb":
        destination = f'{{name: d, type: duckdb, path: "{tmp_path / "shared.duckdb"}"}}'

        def count(table: str) -> int:
            with duckdb.connect(str(tmp_path / "shared.duckdb"), read_only=True) as con:
                return int(con.sql(f"SELECT count(DISTINCT id) FROM {table}").fetchall()[0][0])
    else:
        pg, dsn = request.getfixturevalue("pg"), request.getfixturevalue("postgres_dsn")
        destination = f'{{name: d, type: postgresql, dsn: "{dsn}", schema: {pg.schema}}}'

        def count(table: str) -> int:
            return int(pg.execute(f"SELECT count(DISTINCT id) FROM {table}").fetchone()[0])
    first = _project(tmp_path / "a", "orders_a", destination)
    second = _project(tmp_path / "b", "orders_b", destination)
    for folder in (first, second):
        result = cli("run", "--no-progress", "--json", cwd=folder)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)["resources"][0]
        assert (report["rows_written"], report["rows_filtered"]) == (500, 0)
    assert (count("orders_a"), count("orders_b")) == (500, 500)
    for folder in (first, second):  # each mark is its own: a second run loads nothing new in either project
        result = cli("run", "--no-progress", "--json", cwd=folder)
        assert json.loads(result.stdout)["resources"][0]["rows_filtered"] == 500
    assert (count("orders_a"), count("orders_b")) == (500, 500)


def test_a_state_that_does_not_say_its_target_is_refused(tmp_path: Path, cli: CliRunner) -> None:
    """A checkpoint an earlier conduit filed under the bare resource name cannot be told apart from another
    project's: exit 5 and the way out, instead of using (or ignoring) it."""
    folder = _project(tmp_path, "orders", '{name: d, type: duckdb, path: out.duckdb}')
    legacy = {"resource": "orders", "run_id": "0123abcd", "status": "complete", "incremental_column": "id",
              "mark": None, "updated_at": "2026-01-01T00:00:00.000+00:00"}
    with duckdb.connect(str(folder / "out.duckdb")) as con:
        con.execute("CREATE TABLE _conduit_checkpoints (resource TEXT PRIMARY KEY, state TEXT NOT NULL, "
                    "updated_at TEXT NOT NULL)")
        con.execute("INSERT INTO _conduit_checkpoints VALUES ('orders', ?, '2026')", [json.dumps(legacy)])
    refused = cli("run", "--no-progress", cwd=folder)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "earlier conduit that did not record its target" in refused.stderr
    assert "conduit state reset orders" in refused.stderr
    assert not _tables(folder / "out.duckdb") - {"_conduit_checkpoints"}
    assert cli("state", "reset", "orders", cwd=folder).returncode == 0
    loaded = cli("run", "--no-progress", cwd=folder)
    assert loaded.returncode == 0, loaded.stderr
    with duckdb.connect(str(folder / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM orders").fetchall() == [(500,)]
        keys = [r[0] for r in con.sql("SELECT resource FROM _conduit_checkpoints").fetchall()]
    assert keys == ["orders -> main.orders"]


def _tables(path: Path) -> set[Any]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}


def test_two_full_refresh_loads_in_one_database_never_share_a_staging_table(tmp_path: Path, cli: CliRunner) -> None:
    """The staging table was named after the resource: a second project's full refresh of a resource with the
    same name dropped and refilled the first one's, and the first one's resume then published the second's rows."""
    import signal as signals
    import time

    from tests.e2e.test_crash_resume import _committed, _conduit, _write_csv

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, table, rows in ((first, "orders_a", 200_000), (second, "orders_b", 500)):
        folder.mkdir()
        expected = _write_csv(folder / "in.csv") if rows > 500 else None
        if expected is None:
            (folder / "in.csv").write_text("id,name\n" + "".join(f"{i},b{i}\n" for i in range(rows)), encoding="utf-8")
        (folder / "ingest.yml").write_text(f"""\
sources: [{{name: s, type: csv, path: in.csv}}]
destinations: [{{name: d, type: duckdb, path: "{tmp_path / 'shared.duckdb'}"}}]
resources: [{{name: orders, source: s, destination: d, table: {table}, mode: full_refresh,
              checkpoint: {{every_rows: 2000}}}}]
""", encoding="utf-8")
        if folder == first:
            proc = _conduit(first, "--batch-size", "500")
            deadline = time.monotonic() + 60
            while (_committed(first / ".conduit" / "state.db", "orders") or 0) < 10_000:
                assert proc.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.002)
            proc.send_signal(signals.SIGKILL)
            proc.communicate()
            ids = list(range(1, 200_001))
    assert cli("run", "--no-progress", cwd=second).returncode == 0
    resumed = cli("run", "--resume", "--no-progress", "--batch-size", "500", cwd=first)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with duckdb.connect(str(tmp_path / "shared.duckdb"), read_only=True) as con:
        assert [r[0] for r in con.sql("SELECT id FROM orders_a ORDER BY id").fetchall()] == ids
        assert con.sql("SELECT count(*) FROM orders_b").fetchall() == [(500,)]
        assert con.sql("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '_conduit_stage_%'"
                       ).fetchall() == [(0,)]


def test_resetting_one_resource_of_a_shared_file_keeps_the_others_state(tmp_path: Path, cli: CliRunner) -> None:
    """Two resources append to one CSV; `state reset a` deleted the whole state directory, with b's mark."""
    (tmp_path / "a.csv").write_text("id,name\n1,a\n2,a\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,name\n10,b\n11,b\n", encoding="utf-8")
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: a, type: csv, path: a.csv}, {name: b, type: csv, path: b.csv}]
destinations: [{name: d, type: csv, path: out.csv}]
resources:
  - {name: a, source: a, destination: d, mode: append}
  - {name: b, source: b, destination: d, mode: append, incremental_column: id}
""", encoding="utf-8")
    assert cli("run", "--no-progress").returncode == 0
    assert cli("state", "reset", "a").returncode == 0
    again = cli("run", "b", "--no-progress", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["resources"][0]["rows_filtered"] == 2  # b's mark (11) is still there
    assert (tmp_path / "out.csv").read_text().splitlines() == ['"id","name"', '1,"a"', '2,"a"', '10,"b"', '11,"b"']
