"""`conduit schema ...`, declared schemas and file destinations under drift, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import CliRunner


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_infer_prints_a_block_that_loads(tmp_path: Path, cli: CliRunner) -> None:
    _csv(tmp_path / "in.csv", "id,day,amount,note", [f"{i},03/0{1 + i % 9}/2024,{i}.25,{'' if i % 2 else 'x'}"
                                                     for i in range(1, 51)])
    config = """\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: db, type: duckdb, path: out.duckdb}]
resources:
  - name: load
    source: src
    destination: db
"""
    (tmp_path / "ingest.yml").write_text(config, encoding="utf-8")
    inferred = cli("schema", "infer", "load", "--sample", "20")
    assert inferred.returncode == 0, inferred.stderr
    assert "inferred from 20 sampled rows" in inferred.stdout
    assert "  id: bigint  # no NULLs in the sample" in inferred.stdout
    assert "  amount: double" in inferred.stdout
    as_json = json.loads(cli("schema", "infer", "load", "--format", "json").stdout)
    assert as_json["schema"]["id"] == {"type": "bigint", "nullable": True}
    assert as_json["nulls_in_sample"]["note"] == 25

    # The printed block, pasted under the resource, loads; a declared type with a format overrides inference.
    block = inferred.stdout.split("schema:\n", 1)[1].replace("  day: string", "  day: {type: date, format: '%d/%m/%Y'}")
    (tmp_path / "ingest.yml").write_text(config + "    schema:\n" + "".join(f"    {line}\n" for line in
                                                                            block.splitlines()), encoding="utf-8")
    loaded = cli("run", "--no-progress", "--json")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    import duckdb

    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        types = dict(con.sql("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'load'").fetchall())
        assert types["day"] == "DATE"
        assert con.sql("SELECT min(day)::VARCHAR FROM load").fetchall() == [("2024-01-03",)]


def test_versions_history_and_compare(tmp_path: Path, cli: CliRunner) -> None:
    _csv(tmp_path / "in.csv", "id,name", ["1,a", "2,b"])
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: lake, type: parquet, path: out}]
resources: [{name: items, source: src, destination: lake, mode: full_refresh, schema_evolution: {mode: auto}}]
""", encoding="utf-8")
    assert cli("schema-compare", "items").returncode == 0  # nothing stored yet
    assert cli("run", "--no-progress").returncode == 0
    assert cli("run", "--no-progress").returncode == 0  # same schema: no new version
    _csv(tmp_path / "in.csv", "id,name,score", ["3,c,1.5"])
    compared = cli("schema-compare", "items", "--json")
    assert compared.returncode == 3
    assert json.loads(compared.stdout)["changes"][0]["kind"] == "added"
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resources"][0]["schema_version"] == 2
    assert pq.read_schema(tmp_path / "out" / "items.parquet").names == ["id", "name", "score"]  # the new file
    history = json.loads(cli("schema", "history", "items", "--json").stdout)
    assert [v["version"] for v in history] == [1, 2]
    assert history[1]["diff"]["changes"][0] == {"kind": "added", "column": "score", "old": None, "new": "double",
                                                "compatible": True, "auto_action": "ADD COLUMN score double"}
    shown = json.loads(cli("schema", "show", "items", "--version", "1", "--json").stdout)
    assert [c["name"] for c in shown["schema"]["columns"]] == ["id", "name"]
    assert cli("schema-compare", "items").returncode == 0
    assert cli("schema-compare", "items", "--against", "1").returncode == 3
    _csv(tmp_path / "in.csv", "id,score", ["4,2.5"])
    breaking = cli("schema-compare", "items", "--against", "destination")
    assert breaking.returncode == 4
    assert "breaking" in breaking.stdout
    bad = cli("schema", "show", "items", "--version", "9")
    assert bad.returncode == 2
    assert "no schema version 9" in bad.stderr


def test_parquet_append_with_a_new_column_is_refused_even_in_auto(tmp_path: Path, cli: CliRunner) -> None:
    _csv(tmp_path / "in.csv", "id,name", ["1,a"])
    (tmp_path / "ingest.yml").write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: lake, type: parquet, path: out.parquet}]
resources: [{name: items, source: src, destination: lake, mode: append, schema_evolution: {mode: auto}}]
""", encoding="utf-8")
    assert cli("run", "--no-progress").returncode == 0
    _csv(tmp_path / "in.csv", "id,name,extra", ["2,b,x"])
    result = cli("run", "--no-progress", "--skip-preflight")
    assert result.returncode == 1
    assert "cannot append to out.parquet with a different schema" in result.stderr
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 1


def test_declared_not_null_rejects_nulls_with_row_and_column(tmp_path: Path, cli: CliRunner) -> None:
    """A NULL in a column declared nullable: false sends its row to the DLQ (strict: fails the resource)."""
    _csv(tmp_path / "in.csv", "id,name", ["1,a", "2,", "3,c"])
    config = """\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: db, type: sqlite, path: out.sqlite}]
resources: [{name: items, source: src, destination: db, schema: {name: {type: string, nullable: false}}%s}]
"""
    (tmp_path / "ingest.yml").write_text(config % "", encoding="utf-8")
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["resources"][0]
    assert (report["rows_written"], report["rows_dlq"]) == (2, 1)
    entry = json.loads(Path(report["dlq_file"]).read_text())
    assert (entry["row"], entry["column"], entry["check"]) == (2, "name", "nullable: false")
    (tmp_path / "ingest.yml").write_text(config % ", coercion: {strict: true}", encoding="utf-8")
    strict = cli("run", "--no-progress")
    assert strict.returncode == 1
    assert "row 2, column 'name'" in strict.stderr
    assert "declared nullable: false" in strict.stderr
    assert "Traceback" not in strict.stderr
