"""Nothing changed: every value that reaches a destination equals the source value, or the run says why not.

Each test reads the real destination back (DuckDB, Parquet, PostgreSQL) and compares values, never the
engine's own counters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from tests.conftest import CliRunner

CP1252_ROWS = ["id,name,price", "1,Café “quoted”,5 €", "2,naïve \u2013 dash,3", "3,Œuvre ™,4"]


def _duck(path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_a_cp1252_file_is_never_read_as_latin1(tmp_path: Path, cli: CliRunner,
                                               write_config: Callable[[str], Path]) -> None:
    """`encoding: auto` used to fall back to latin-1, turning € “ ” into C1 control characters without a word.
    Now the run stops before writing, shows how the likely encodings read the file, and asks; with the
    encoding set, every character arrives as written."""
    (tmp_path / "in.csv").write_bytes(("\n".join(CP1252_ROWS) + "\n").encode("cp1252"))
    config = """\
    sources: [{name: s, type: csv, path: in.csv%s}]
    destinations: [{name: db, type: duckdb, path: out.duckdb}]
    resources: [{name: items, source: s, destination: db}]
    """
    write_config(config % "")
    refused = cli("run", "--no-progress")
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "cannot tell which encoding the file uses" in refused.stderr
    assert "cp1252: '2,naïve \u2013 dash,3'" in refused.stderr
    assert "set `encoding:`" in refused.stderr
    assert not (tmp_path / "out.duckdb").exists()

    write_config(config % ", encoding: cp1252")
    loaded = cli("run", "--no-progress")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert _duck(tmp_path / "out.duckdb", "SELECT id, name, price FROM items ORDER BY id") == [
        (1, "Café “quoted”", "5 €"), (2, "naïve \u2013 dash", "3"), (3, "Œuvre ™", "4")]
