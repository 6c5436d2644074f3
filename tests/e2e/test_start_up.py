"""What a `conduit run` pays before and around its rows: no library it does not use, one connection per
destination. Measured by the benchmarks in benchmarks/ (never timed here); these tests pin the causes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Runs the CLI in this interpreter and reports what it imported and how often it connected.
_PROBE = """
import json, sys
import conduit_core.connectors.postgresql as postgresql
from conduit_core.cli.app import main
connects = []
real = postgresql.connect
postgresql.connect = lambda *a, **k: connects.append(1) or real(*a, **k)
sys.argv = ["conduit", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
import pyarrow
print(json.dumps({"code": code, "pandas": "pandas" in sys.modules, "pg_connects": len(connects),
                  "pool": pyarrow.default_memory_pool().backend_name}))
"""


def _probe(tmp_path: Path, *args: str, **env_vars: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env.update({"NO_COLOR": "1", "PYTHONPATH": str(Path.cwd()), **env_vars})
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), result.stdout + result.stderr
    return report


def test_a_run_that_needs_no_pandas_does_not_import_it(tmp_path: Path,
                                                       write_config: Callable[[str], Path]) -> None:
    """pyarrow imports pandas (0.1-0.2 s) the first time it converts values, when pandas is installed (it is,
    in the dev environment); the CLI keeps it out until something imports it."""
    (tmp_path / "in.csv").write_text("id,amount,day\n1,1.5,2024-01-02\n2,,2024-01-03\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources: [{name: items, source: s, destination: d}]
    """)
    report = _probe(tmp_path, "run", "--no-progress")
    assert report["pandas"] is False
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, amount, day::VARCHAR FROM items ORDER BY id").fetchall() == [
            (1, 1.5, "2024-01-02"), (2, None, "2024-01-03")]


def frame_of_my_own(batch: pa.RecordBatch) -> Any:
    """A Python step that imports pandas itself (after the run started) and returns a frame it built: pyarrow
    must see pandas again, or the nullable integer column fails to convert."""
    import pandas

    ids = batch.column("id").to_pylist()
    return pandas.DataFrame({"id": ids, "big": pandas.array([2**62 + 1 if i % 2 else None for i in ids],
                                                             dtype="Int64")})


def test_a_step_that_imports_pandas_itself_gets_pyarrow_with_pandas(tmp_path: Path,
                                                                    write_config: Callable[[str], Path]) -> None:
    pytest.importorskip("pandas")
    (tmp_path / "in.csv").write_text("id\n1\n2\n3\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - {name: items, source: s, destination: d, transforms: [{uses: "tests.e2e.test_start_up:frame_of_my_own"}]}
    """)
    report = _probe(tmp_path, "run", "--no-progress")
    assert report["pandas"] is True
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, big FROM items ORDER BY id").fetchall() == [
            (1, 2**62 + 1), (2, None), (3, 2**62 + 1)]


@pytest.mark.parametrize("mode", ["append", "full_refresh"])
def test_one_connection_per_postgresql_destination(tmp_path: Path, pg: Any, postgres_dsn: str, mode: str,
                                                   write_config: Callable[[str], Path]) -> None:
    """State, preflight, the target's schema and the load share one connection (each costs ~25 ms); a second
    run, which finds state and a table, too."""
    (tmp_path / "in.csv").write_text("id,name\n1,a\n2,b\n", encoding="utf-8")
    write_config(textwrap.dedent(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}]
    resources: [{{name: items, source: s, destination: d, mode: {mode}}}]
    """))
    for run in (1, 2):
        assert _probe(tmp_path, "run", "--no-progress")["pg_connects"] == 1
        expected = 2 * run if mode == "append" else 2
        assert pg.execute("SELECT count(*) FROM items").fetchone() == (expected,)


def test_arrow_allocates_with_jemalloc_unless_told_otherwise(tmp_path: Path,
                                                            write_config: Callable[[str], Path]) -> None:
    """mimalloc, pyarrow's default, kept 60-80 MB more of a 5M-row stream (benchmarks/bench_files.py)."""
    (tmp_path / "in.csv").write_text("id\n1\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: parquet, path: out.parquet}]
    resources: [{name: items, source: s, destination: d}]
    """)
    assert _probe(tmp_path, "run", "--no-progress")["pool"] == "jemalloc"
    assert _probe(tmp_path, "run", "--no-progress", ARROW_DEFAULT_MEMORY_POOL="system")["pool"] == "system"


def test_a_postgresql_source_reads_on_the_connection_preflight_opened(tmp_path: Path, pg: Any, postgres_dsn: str,
                                                                      write_config: Callable[[str], Path]) -> None:
    pg.execute("CREATE TABLE src AS SELECT g AS id, 'v' || g AS name FROM generate_series(1, 2500) g")
    write_config(textwrap.dedent(f"""\
    sources: [{{name: s, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}, table: src}}]
    destinations: [{{name: d, type: parquet, path: out.parquet}}]
    resources: [{{name: items, source: s, destination: d}}]
    """))
    assert _probe(tmp_path, "run", "--no-progress", "--batch-size", "1000")["pg_connects"] == 1
    table = pq.read_table(tmp_path / "out.parquet")
    assert sorted(table.column("id").to_pylist()) == list(range(1, 2501))
