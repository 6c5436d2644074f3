"""Third-party plugins, proved with a real package installed the way users install one.

``examples/conduit-connector-example`` is built by its own build backend and
installed with pip into a directory of its own; the real ``conduit`` CLI then
runs in a subprocess that sees that directory only through PYTHONPATH, so its
connectors can be found only through their entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "conduit-connector-example"
DIST = "conduit-connector-example"
BROKEN_DIST = "conduit-broken-plugin"
BROKEN_REASON = "the acme driver library is not installed"


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    env.pop("CONDUIT_EXAMPLE_OUT", None)
    return env


def conduit(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conduit_core", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False)


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, built and installed with pip into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-input",
         "--disable-pip-version-check", "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, _explain(proc)
    assert list(target.glob("conduit_connector_example-0.1.0.dist-info/entry_points.txt")), sorted(target.iterdir())
    return target


@pytest.fixture(scope="module")
def plugin_env(plugin_dir: Path) -> dict[str, str]:
    return _env(plugin_dir)


@pytest.fixture(scope="module")
def broken_env(plugin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example package plus an installed distribution whose entry-point module fails to import."""
    site = tmp_path_factory.mktemp("broken_site")
    (site / "conduit_broken_plugin.py").write_text(f"raise ImportError({BROKEN_REASON!r})\n", encoding="utf-8")
    info = site / "conduit_broken_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {BROKEN_DIST}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[conduit.sources]\nbroken_source = conduit_broken_plugin:BrokenSource\n",
                                           encoding="utf-8")
    return _env(plugin_dir, site)


def test_plugin_is_imported_from_the_installed_package(plugin_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import conduit_connector_example as m; print(m.__file__)"],
                          env=plugin_env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, _explain(proc)
    installed = Path(plugin_env["PYTHONPATH"]).resolve()
    assert Path(proc.stdout.strip()).resolve().is_relative_to(installed), proc.stdout


def test_connectors_lists_plugin_types_with_their_distribution(plugin_env: dict[str, str], tmp_path: Path) -> None:
    proc = conduit(plugin_env, "connectors", "--json", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)
    listed = {(c["kind"], c["type"]): c for c in json.loads(proc.stdout)}

    source = listed[("source", "example_sequence")]
    assert source["origin"] == f"{DIST} 0.1.0"
    assert source["target"] == "conduit_connector_example:SequenceSource"
    assert source["error"] is None
    assert source["description"].startswith("Yields `count` numbered records")

    destination = listed[("destination", "example_jsonl")]
    assert destination["origin"] == f"{DIST} 0.1.0"
    assert destination["target"] == "conduit_connector_example:JsonlDestination"
    assert destination["error"] is None

    # Entry points register under their own kind only, next to the built-ins.
    assert ("destination", "example_sequence") not in listed
    assert ("source", "example_jsonl") not in listed
    assert listed[("destination", "duckdb")]["origin"] == "built-in"


def test_plugin_source_into_builtin_duckdb(plugin_env: dict[str, str], tmp_path: Path) -> None:
    count, start = 1000, 5
    database = tmp_path / "out" / "warehouse.duckdb"
    config = write_config(tmp_path / "ingest.yml", {
        "sources": [{"name": "numbers", "type": "example_sequence", "count": count, "start": start}],
        "destinations": [{"name": "warehouse", "type": "duckdb", "path": "out/warehouse.duckdb"}],
        # A batch size that does not divide the row count: several full batches and a short last one.
        "resources": [{"name": "squares", "source": "numbers", "destination": "warehouse", "table": "squares",
                       "mode": "full_refresh", "batch_size": 64}],
    })
    (tmp_path / "out").mkdir()

    proc = conduit(plugin_env, "run", "-f", str(config), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)

    ids = range(start, start + count)
    with duckdb.connect(str(database), read_only=True) as con:
        summary = con.execute(
            "select count(*), min(id), max(id), sum(square), count(distinct id) from squares").fetchone()
        rows = con.execute("select id, square, label from squares order by id").fetchall()
        columns = [c[0] for c in con.execute("select * from squares limit 0").description]
    assert summary == (count, start, start + count - 1, sum(n * n for n in ids), count)
    assert rows == [(n, n * n, f"item-{n}") for n in ids]
    assert columns == ["id", "square", "label"]


def test_plugin_validator_by_entry_point(plugin_env: dict[str, str], tmp_path: Path) -> None:
    """The example package's `perfect_square` check (entry point conduit.validators) routes rows to the DLQ."""
    config = write_config(tmp_path / "ingest.yml", {
        "sources": [{"name": "numbers", "type": "example_sequence", "count": 100, "start": 1}],
        "destinations": [{"name": "warehouse", "type": "duckdb", "path": "warehouse.duckdb"}],
        "resources": [{"name": "squares", "source": "numbers", "destination": "warehouse",
                       "quality_checks": [{"column": "id", "check": "perfect_square"}]}],
    })
    proc = conduit(plugin_env, "run", "-f", str(config), "--no-progress", "--json", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)
    report = json.loads(proc.stdout)["resources"][0]
    assert (report["rows_written"], report["rows_dlq"]) == (10, 90)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select list(id order by id) from squares").fetchone() == (
            [n * n for n in range(1, 11)],)


def test_plugin_transform_step_by_entry_point(plugin_env: dict[str, str], tmp_path: Path) -> None:
    """The example package's `add_cube` step (entry point conduit.transforms) adds a column to every row."""
    config = write_config(tmp_path / "ingest.yml", {
        "sources": [{"name": "numbers", "type": "example_sequence", "count": 5, "start": 1}],
        "destinations": [{"name": "warehouse", "type": "duckdb", "path": "warehouse.duckdb"}],
        "resources": [{"name": "cubes", "source": "numbers", "destination": "warehouse",
                       "transforms": [{"uses": "add_cube", "with": {"column": "id", "name": "id_cubed"}}]}],
    })
    proc = conduit(plugin_env, "run", "-f", str(config), "--no-progress", "--json", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)
    steps = json.loads(proc.stdout)["resources"][0]["steps"]
    assert [(s["step"], s["rows_in"], s["rows_out"]) for s in steps if s["step"].startswith("uses")] == [
        ("uses #1", 5, 5)]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select id, id_cubed from cubes order by id").fetchall() == [
            (n, n ** 3) for n in range(1, 6)]
    listed = conduit(plugin_env, "steps", "--json", cwd=tmp_path)
    assert listed.returncode == 0, _explain(listed)
    steps_by_name = {s["name"]: s for s in json.loads(listed.stdout)}
    assert steps_by_name["add_cube"]["origin"] == f"{DIST} 0.1.0"
    assert steps_by_name["add_cube"]["target"] == "conduit_connector_example:add_cube"
    assert steps_by_name["add_cube"]["error"] is None
    assert steps_by_name["join"]["origin"] == "built-in"


def test_builtin_csv_into_plugin_jsonl(plugin_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "id,name,note,amount,joined\n"
        '1,Alice,"Smith, Jr.",10.5,2024-01-15\n'
        "2,Bob,,20,2024-02-29\n"
        '3,"Carol ""CJ"" Zoë",plain,,2023-12-31\n',
        encoding="utf-8")
    output = tmp_path / "out" / "people.jsonl"
    output.parent.mkdir()
    config = write_config(tmp_path / "ingest.yml", {
        "sources": [{"name": "people_csv", "type": "csv", "path": "people.csv"}],
        "destinations": [{"name": "lines", "type": "example_jsonl", "path": str(output)}],
        "resources": [{"name": "people", "source": "people_csv", "destination": "lines"}],
    })

    proc = conduit(plugin_env, "run", "-f", str(config), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)

    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert records == [
        {"id": 1, "name": "Alice", "note": "Smith, Jr.", "amount": 10.5, "joined": "2024-01-15"},
        {"id": 2, "name": "Bob", "note": None, "amount": 20.0, "joined": "2024-02-29"},
        {"id": 3, "name": 'Carol "CJ" Zoë', "note": "plain", "amount": None, "joined": "2023-12-31"},
    ]
    # The temporary file was renamed over the target, not left beside it.
    assert sorted(p.name for p in output.parent.iterdir()) == ["people.jsonl"]


def test_broken_plugin_is_a_warning_in_connectors(broken_env: dict[str, str], tmp_path: Path) -> None:
    proc = conduit(broken_env, "connectors", cwd=tmp_path)
    assert proc.returncode == 0, _explain(proc)
    assert "Traceback" not in proc.stderr + proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1, _explain(proc)
    assert "'broken_source'" in warnings[0]
    assert BROKEN_DIST in warnings[0]
    assert f"ImportError: {BROKEN_REASON}" in warnings[0]
    # The working plugin is still listed.
    assert "example_sequence" in proc.stdout
    assert "example_jsonl" in proc.stdout

    as_json = conduit(broken_env, "connectors", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, _explain(as_json)
    listed = {(c["kind"], c["type"]): c for c in json.loads(as_json.stdout)}
    assert BROKEN_REASON in listed[("source", "broken_source")]["error"]
    assert listed[("source", "example_sequence")]["error"] is None


def test_run_with_broken_plugin_is_a_config_error(broken_env: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "never.jsonl"
    config = write_config(tmp_path / "ingest.yml", {
        "sources": [{"name": "acme", "type": "broken_source"}],
        "destinations": [{"name": "lines", "type": "example_jsonl", "path": str(output)}],
        "resources": [{"name": "acme_rows", "source": "acme", "destination": "lines"}],
    })

    proc = conduit(broken_env, "run", "-f", str(config), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, _explain(proc)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "'broken_source'" in proc.stderr
    assert "failed to import" in proc.stderr
    assert f"ImportError: {BROKEN_REASON}" in proc.stderr
    assert BROKEN_DIST in proc.stderr
    assert not output.exists()
