"""Globs of files with different columns: `combine: union_by_name` aligns them by name (NULL where a file has
no such column), `validate_schema` refuses before a row is read, `concat` needs the same columns. Read back
in full from DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import CliRunner


def _csv_files(folder: Path) -> list[tuple[Any, ...]]:
    """Three files, each with other columns or another order; the rows expected as (id, name, amount, zip)."""
    folder.mkdir()
    (folder / "a.csv").write_text("id,name\n1,ann\n2,bob\n", encoding="utf-8")
    (folder / "b.csv").write_text("id,amount,name\n3,10.50,cy\n4,,dee\n5,12345678901234567890.25,eve\n",
                                  encoding="utf-8")
    (folder / "c.csv").write_text("name,zip,id\nfay,00501,6\ngus,02134,7\n", encoding="utf-8")
    return [(1, "ann", None, None), (2, "bob", None, None), (3, "cy", "10.50", None), (4, "dee", None, None),
            (5, "eve", "12345678901234567890.25", None), (6, "fay", None, "00501"), (7, "gus", None, "02134")]


def _config(write_config: Callable[[str], Path], destination: str, source: str) -> None:
    write_config(f"""\
    sources: [{source}]
    destinations: [{destination}]
    resources: [{{name: people, source: s, destination: d}}]
    """)


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_union_by_name_aligns_csv_files_by_column_name(tmp_path: Path, cli: CliRunner,
                                                       write_config: Callable[[str], Path], kind: str,
                                                       request: pytest.FixtureRequest) -> None:
    expected = _csv_files(tmp_path / "in")
    if kind == "duckdb":
        destination = "{name: d, type: duckdb, path: out.duckdb}"
    else:
        pg, dsn = request.getfixturevalue("pg"), request.getfixturevalue("postgres_dsn")
        destination = f'{{name: d, type: postgresql, dsn: "{dsn}", schema: {pg.schema}}}'
    _config(write_config, destination, "{name: s, type: csv, path: in/*.csv, combine: union_by_name}")
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)["resources"][0]
    assert (report["rows_read"], report["rows_written"]) == (7, 7)
    assert [Path(f).name for f in report["files_read"]] == ["a.csv", "b.csv", "c.csv"]
    query = "SELECT id, name, CAST(amount AS VARCHAR), zip FROM people ORDER BY id"
    if kind == "duckdb":
        with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
            actual = con.sql(query).fetchall()
            types = dict(con.sql("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'people'").fetchall())
        assert types["zip"] == "VARCHAR"  # typed by the first file that has it: leading zeros kept as text
        assert types["amount"].startswith("DECIMAL")  # a number no double holds exactly
    else:
        actual = [tuple(r) for r in request.getfixturevalue("pg").execute(
            query.replace("VARCHAR", "TEXT")).fetchall()]
    assert actual == expected
    if kind == "duckdb":  # the columns in the order they first appear across the files
        with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
            assert [r[0] for r in con.sql("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                          "'people' ORDER BY ordinal_position").fetchall()] == ["id", "name",
                                                                                                "amount", "zip"]


def test_concat_and_validate_schema_refuse_files_with_other_columns(tmp_path: Path, cli: CliRunner,
                                                                   write_config: Callable[[str], Path]) -> None:
    _csv_files(tmp_path / "in")
    destination = "{name: d, type: duckdb, path: out.duckdb}"
    _config(write_config, destination, "{name: s, type: csv, path: in/*.csv, combine: validate_schema}")
    result = cli("run", "--no-progress")
    assert result.returncode != 0
    assert "combine: validate_schema: columns differ from the first file (a.csv): extra ['amount']" in result.stderr
    assert "b.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.duckdb").exists()

    _config(write_config, destination, "{name: s, type: csv, path: in/*.csv}")
    result = cli("run", "--no-progress")
    assert result.returncode != 0
    assert "columns differ from the first file of the glob: extra ['amount']" in result.stderr
    assert "combine: union_by_name" in result.stderr  # the hint
    with duckdb.connect(str(tmp_path / "out.duckdb")) as con:  # the failed load left no table behind
        assert con.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'people'"
                       ).fetchall() == [(0,)]


def test_parquet_union_by_name_and_one_type_per_column(tmp_path: Path, cli: CliRunner,
                                                       write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.array([1.5, None])}), folder / "1.parquet")
    pq.write_table(pa.table({"id": pa.array([3], pa.int64()), "tag": ["x"]}), folder / "2.parquet")
    _config(write_config, "{name: d, type: duckdb, path: out.duckdb}",
            "{name: s, type: parquet, path: in/*.parquet, combine: union_by_name}")
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, v, tag FROM people ORDER BY id").fetchall() == [
            (1, 1.5, None), (2, None, None), (3, None, "x")]

    # A column one file declares NOT NULL and another holds NULLs in: nullable in the union.
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.array([1.5, None])},
                            schema=pa.schema([pa.field("id", pa.int64(), nullable=False), ("v", pa.float64())])),
                   folder / "1.parquet")
    (tmp_path / "out.duckdb").unlink()
    pq.write_table(pa.table({"id": pa.array([None, 5], pa.int64()), "tag": ["z", None]}), folder / "2b.parquet")
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, v, tag FROM people ORDER BY id NULLS LAST, tag").fetchall() == [
            (1, 1.5, None), (2, None, None), (3, None, "x"), (5, None, None), (None, None, "z")]
    (folder / "2b.parquet").unlink()

    pq.write_table(pa.table({"id": pa.array(["4"]), "tag": ["y"]}), folder / "3.parquet")
    result = cli("run", "--no-progress")
    assert result.returncode != 0
    assert "column 'id' is string here but int64 in" in result.stderr, result.stderr
    assert "3.parquet" in result.stderr

    _config(write_config, "{name: d, type: duckdb, path: out.duckdb}",
            "{name: s, type: parquet, path: in/*.parquet, combine: validate_schema}")
    result = cli("run", "--no-progress")
    assert result.returncode != 0
    assert "the schema differs from the first file (1.parquet): missing ['v']; extra ['tag']" in result.stderr


def test_json_validate_schema_names_the_file_and_the_keys(tmp_path: Path, cli: CliRunner,
                                                           write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.ndjson").write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n', encoding="utf-8")
    (folder / "b.ndjson").write_text('{"id": 3, "nmae": "c"}\n', encoding="utf-8")
    _config(write_config, "{name: d, type: duckdb, path: out.duckdb}",
            "{name: s, type: ndjson, path: in/*.ndjson, combine: validate_schema}")
    result = cli("run", "--no-progress")
    assert result.returncode != 0
    assert "the keys differ from the first file (a.ndjson): missing ['name']; extra ['nmae']" in result.stderr
    assert not (tmp_path / "out.duckdb").exists()

    _config(write_config, "{name: d, type: duckdb, path: out.duckdb}", "{name: s, type: ndjson, path: in/*.ndjson}")
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, name, nmae FROM people ORDER BY id").fetchall() == [
            (1, "a", None), (2, "b", None), (3, None, "c")]
