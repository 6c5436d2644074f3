"""CSV/JSON/NDJSON/Parquet/DuckDB/SQLite through `conduit run`, checked in the real outputs."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import CliRunner

ROWS = 2_500
SQLITE_SRC_ROWS = 300


def _table(rows: int, start: int = 1) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": [f"name {i}" for i in ids],
        "amount": pa.array([Decimal(f"{i}.{i % 100:02d}") for i in ids], pa.decimal128(12, 2)),
        "active": [i % 3 == 0 for i in ids],
        "day": pa.array([date(2024, 1, 1 + i % 28) for i in ids], pa.date32()),
        "score": [None if i % 10 == 0 else i * 2 for i in ids],
        "note": [None if i % 7 == 0 else ("" if i % 11 == 0 else f"note, with comma {i}") for i in ids],
    })


def _write_csv(path: Path, table: pa.Table) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            out = []
            for key, value in row.items():
                if value is None:
                    out.append("")
                elif key == "note" and value == "":
                    out.append('""')
                elif isinstance(value, bool):
                    out.append(str(value).lower())
                else:
                    out.append(str(value))
            handle.write(",".join(f'"{v}"' if "," in v else v for v in out) + "\n")


@pytest.fixture
def source_files(tmp_path: Path) -> pa.Table:
    table = _table(ROWS)
    _write_csv(tmp_path / "in.csv", table)
    with (tmp_path / "in.ndjson").open("w", encoding="utf-8") as handle:
        for row in table.to_pylist():
            handle.write(json.dumps(row, default=str) + "\n")
    (tmp_path / "in.json").write_text(json.dumps(table.to_pylist(), default=str), encoding="utf-8")
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=1000)
    con = sqlite3.connect(tmp_path / "in.sqlite")
    con.execute("CREATE TABLE src (id INTEGER, name TEXT, score REAL)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?)", [(i, f"n{i}", i / 2) for i in range(SQLITE_SRC_ROWS)])
    con.commit()
    con.close()
    duckdb.connect(str(tmp_path / "in.duckdb")).execute(
        "CREATE TABLE src AS SELECT range AS id, 'v' || range AS v FROM range(1234)").close()
    return table


CONFIG = """\
sources:
  - {name: csv_in, type: csv, path: in.csv}
  - {name: ndjson_in, type: ndjson, path: in.ndjson}
  - {name: json_in, type: json, path: in.json, format: array}
  - {name: parquet_in, type: parquet, path: in.parquet}
  - {name: sqlite_in, type: sqlite, path: in.sqlite, table: src}
  - {name: duckdb_in, type: duckdb, path: in.duckdb, query: "SELECT * FROM src WHERE id % 2 = 0"}
destinations:
  - {name: lake, type: parquet, path: out}
  - {name: db, type: duckdb, path: out/warehouse.duckdb}
  - {name: lite, type: sqlite, path: out/lite.sqlite}
  - {name: csv_out, type: csv, path: out}
  - {name: ndjson_out, type: ndjson, path: out}
resources:
  - {name: csv_to_parquet, source: csv_in, destination: lake, path: out/csv.parquet}
  - {name: csv_to_duckdb, source: csv_in, destination: db, table: from_csv}
  - {name: csv_to_sqlite, source: csv_in, destination: lite, table: from_csv}
  - {name: csv_to_csv, source: csv_in, destination: csv_out, path: out/copy.csv}
  - {name: csv_to_ndjson, source: csv_in, destination: ndjson_out, path: out/copy.ndjson}
  - {name: ndjson_to_duckdb, source: ndjson_in, destination: db, table: from_ndjson}
  - {name: json_to_duckdb, source: json_in, destination: db, table: from_json}
  - {name: parquet_to_sqlite, source: parquet_in, destination: lite, table: from_parquet}
  - {name: sqlite_to_parquet, source: sqlite_in, destination: lake, path: out/sqlite.parquet}
  - {name: duckdb_to_ndjson, source: duckdb_in, destination: ndjson_out, path: out/duck.ndjson}
"""


def _rows(table: pa.Table, columns: list[str]) -> list[tuple[object, ...]]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_every_format_pair_loads_every_row_exactly(tmp_path: Path, cli: CliRunner, source_files: pa.Table,
                                                    write_config: Callable[[str], Path]) -> None:
    write_config(CONFIG)
    result = cli("run", "--batch-size", "700", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = _rows(source_files, ["id", "name", "score", "note"])
    out = tmp_path / "out"

    # CSV -> Parquet keeps types inferred from the CSV, NULLs and empty strings apart.
    parquet = pq.read_table(out / "csv.parquet")
    assert parquet.num_rows == ROWS
    assert _rows(parquet, ["id", "name", "score", "note"]) == expected
    assert parquet.schema.field("day").type == pa.date32()
    assert parquet.column("active").to_pylist() == source_files.column("active").to_pylist()

    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    for table in ("from_csv", "from_ndjson", "from_json"):
        got = con.execute(f"SELECT id, name, score, note FROM {table} ORDER BY id").fetchall()
        assert sorted(got) == expected, table
    # Decimal-looking CSV text is inferred as DOUBLE (as DuckDB's own reader does).
    assert con.execute("SELECT sum(amount) FROM from_csv").fetchone()[0] == pytest.approx(
        float(sum(source_files.column("amount").to_pylist())))
    con.close()

    lite = sqlite3.connect(out / "lite.sqlite")
    assert sorted(lite.execute("SELECT id, name, score, note FROM from_csv")) == expected
    got = lite.execute("SELECT amount, day FROM from_parquet WHERE id = 42").fetchone()
    assert got == ("42.42", "2024-01-15")
    assert lite.execute("SELECT count(*) FROM from_parquet").fetchone()[0] == ROWS
    lite.close()

    copy = (out / "copy.csv").read_text(encoding="utf-8").splitlines()
    assert len(copy) == ROWS + 1
    with (out / "copy.csv").open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in records] == list(range(1, ROWS + 1))
    assert records[6]["note"] == "" and records[10]["note"] == ""  # noqa: PT018

    ndjson = [json.loads(line) for line in (out / "copy.ndjson").read_text(encoding="utf-8").splitlines()]
    assert len(ndjson) == ROWS
    assert _rows(pa.Table.from_pylist(ndjson), ["id", "name", "score", "note"]) == expected

    sqlite_parquet = pq.read_table(out / "sqlite.parquet")
    assert sqlite_parquet.num_rows == SQLITE_SRC_ROWS
    assert sum(sqlite_parquet.column("score").to_pylist()) == sum(i / 2 for i in range(SQLITE_SRC_ROWS))

    duck = [json.loads(line) for line in (out / "duck.ndjson").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in duck) == list(range(0, 1234, 2))
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_manifest_records_each_resource(tmp_path: Path, cli: CliRunner, source_files: pa.Table,
                                        write_config: Callable[[str], Path]) -> None:
    write_config(CONFIG)
    assert cli("run", "csv_to_parquet", "ndjson_to_duckdb", "--no-progress").returncode == 0
    listing = cli("manifest", "--json")
    assert listing.returncode == 0, listing.stderr
    runs = json.loads(listing.stdout)
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "success"
    by_name = {r["resource"]: r for r in run["resources"]}
    assert set(by_name) == {"csv_to_parquet", "ndjson_to_duckdb"}
    assert by_name["csv_to_parquet"]["rows_read"] == ROWS == by_name["csv_to_parquet"]["rows_written"]
    assert by_name["csv_to_parquet"]["files_read"] == [str(tmp_path / "in.csv")]
    manifest = json.loads((tmp_path / ".conduit" / "runs" / run["run_id"] / "manifest.json").read_text())
    assert manifest["rows_read"] == 2 * ROWS


def test_modes_append_full_refresh_merge(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    _write_csv(tmp_path / "in.csv", _table(100))
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations:
      - {name: db, type: duckdb, path: db.duckdb}
      - {name: lite, type: sqlite, path: db.sqlite}
      - {name: files, type: csv, path: out.csv}
      - {name: nd, type: ndjson, path: out.ndjson}
      - {name: pq, type: parquet, path: out.parquet}
    resources:
      - {name: app_db, source: s, destination: db, table: app, mode: append}
      - {name: ref_db, source: s, destination: db, table: ref, mode: full_refresh}
      - {name: mrg_db, source: s, destination: db, table: mrg, mode: merge, primary_key: [id]}
      - {name: app_lite, source: s, destination: lite, table: app, mode: append}
      - {name: mrg_lite, source: s, destination: lite, table: mrg, mode: merge, primary_key: id}
      - {name: app_csv, source: s, destination: files, mode: append}
      - {name: app_nd, source: s, destination: nd, mode: append}
      - {name: app_pq, source: s, destination: pq, mode: append}
    """)
    for _ in range(2):
        result = cli("run", "--no-progress")
        assert result.returncode == 0, result.stdout + result.stderr
    # The second load changes ten rows and adds five new ones.
    changed = _table(105)
    changed = changed.set_column(1, "name", pa.array([f"changed {i}" for i in range(1, 106)]))
    _write_csv(tmp_path / "in.csv", changed.slice(90))
    assert cli("run", "mrg_db", "mrg_lite", "ref_db", "--no-progress").returncode == 0

    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM app").fetchone() == (200, 100)
    assert con.execute("SELECT count(*), min(id), max(id) FROM ref").fetchone() == (15, 91, 105)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM mrg").fetchone() == (105, 105)
    assert con.execute("SELECT name FROM mrg WHERE id = 95").fetchone() == ("changed 95",)
    assert con.execute("SELECT name FROM mrg WHERE id = 5").fetchone() == ("name 5",)
    con.close()
    lite = sqlite3.connect(tmp_path / "db.sqlite")
    assert lite.execute("SELECT count(*) FROM app").fetchone() == (200,)
    assert lite.execute("SELECT count(*), count(DISTINCT id) FROM mrg").fetchone() == (105, 105)
    assert lite.execute("SELECT name FROM mrg WHERE id = 100").fetchone() == ("changed 100",)
    lite.close()
    csv_lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_lines) == 201 and csv_lines.count(csv_lines[0]) == 1  # noqa: PT018 - header once
    assert len((tmp_path / "out.ndjson").read_text(encoding="utf-8").splitlines()) == 200
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 200


def test_merge_keeps_the_last_duplicate_within_one_load(tmp_path: Path, cli: CliRunner,
                                                        write_config: Callable[[str], Path]) -> None:
    (tmp_path / "in.csv").write_text("id,v\n1,a\n2,b\n1,c\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: db, type: duckdb, path: db.duckdb}]
    resources: [{name: t, source: s, destination: db, mode: merge, primary_key: [id]}]
    """)
    assert cli("run", "--no-progress").returncode == 0
    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    assert con.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "c"), (2, "b")]


def test_glob_reads_many_files_as_one_stream(tmp_path: Path, cli: CliRunner,
                                             write_config: Callable[[str], Path]) -> None:
    (tmp_path / "data").mkdir()
    for part in range(3):
        _write_csv(tmp_path / "data" / f"part{part}.csv", _table(400, start=part * 400 + 1))
    write_config("""\
    sources: [{name: s, type: csv, path: "data/*.csv"}]
    destinations: [{name: lake, type: parquet, path: out.parquet}]
    resources: [{name: parts, source: s, destination: lake}]
    """)
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["resources"][0]["files_read"]) == 3
    ids = pq.read_table(tmp_path / "out.parquet").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 1201))


def test_csv_dialects_encodings_nulls_and_embedded_newlines(tmp_path: Path, cli: CliRunner,
                                                            write_config: Callable[[str], Path]) -> None:
    (tmp_path / "bom.csv").write_bytes("\ufeffid;city;note\n1;Köln;\"two\nlines\"\n2;Zürich;NA\n".encode())
    (tmp_path / "latin.csv").write_bytes("id|city|note\n1|Málaga|null\n2|Besançon|\n".encode("latin-1"))
    (tmp_path / "nulls.csv").write_text('id,a,b\n1,,""\n2,NA,x\n', encoding="utf-8")
    write_config("""\
    sources:
      - {name: bom, type: csv, path: bom.csv}
      - {name: latin, type: csv, path: latin.csv, encoding: latin-1}
      - {name: nulls, type: csv, path: nulls.csv}
      - {name: custom_nulls, type: csv, path: nulls.csv, null_values: ["", "NA"]}
    destinations: [{name: db, type: duckdb, path: db.duckdb}]
    resources:
      - {name: bom, source: bom, destination: db}
      - {name: latin, source: latin, destination: db}
      - {name: nulls, source: nulls, destination: db}
      - {name: custom_nulls, source: custom_nulls, destination: db}
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    assert [c[0] for c in con.execute("DESCRIBE bom").fetchall()] == ["id", "city", "note"]
    assert con.execute("SELECT city, note FROM bom ORDER BY id").fetchall() == [("Köln", "two\nlines"),
                                                                             ("Zürich", "NA")]
    assert con.execute("SELECT city, note FROM latin ORDER BY id").fetchall() == [("Málaga", "null"),
                                                                               ("Besançon", None)]
    assert con.execute("SELECT a, b FROM nulls ORDER BY id").fetchall() == [(None, ""), ("NA", "x")]
    assert con.execute("SELECT a FROM custom_nulls ORDER BY id").fetchall() == [(None,), (None,)]


def test_bundled_example_runs_without_any_server(tmp_path: Path, cli: CliRunner) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = cli("run", "-f", str(repo / "ingest.yml.example"), "--no-progress",
                 env={"CONDUIT_EXAMPLE_OUT": str(tmp_path / "example")})
    assert result.returncode == 0, result.stdout + result.stderr
    con = duckdb.connect(str(tmp_path / "example" / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (200,)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (1000,)
    assert pq.read_table(tmp_path / "example" / "orders.parquet").num_rows == 1000
    assert isinstance(con.execute("SELECT max(ordered_at) FROM orders").fetchone()[0], datetime)


def test_csv_type_controls_empty_columns_and_header_only_refresh(tmp_path: Path, cli: CliRunner,
                                                                  write_config: Callable[[str], Path]) -> None:
    # A column empty in the whole first block is text, so later values still fit.
    body = "".join(f"{i},,{i:05d}\n" for i in range(1, 30_001)) + "30001,late,00042\n"
    (tmp_path / "in.csv").write_text("id,maybe,zip\n" + body, encoding="utf-8")
    write_config("""\
    sources:
      - {name: s, type: csv, path: in.csv}
      - {name: raw, type: csv, path: in.csv, infer_types: false, column_types: {id: int64}}
    destinations: [{name: db, type: duckdb, path: db.duckdb}]
    resources:
      - {name: typed, source: s, destination: db, mode: full_refresh}
      - {name: raw, source: raw, destination: db, mode: full_refresh}
    """)
    result = cli("run", "--no-progress", "--batch-size", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert con.execute("SELECT count(*), count(maybe), max(maybe) FROM typed").fetchone() == (30001, 1, "late")
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'raw'").fetchall())
    assert types == {"id": "BIGINT", "maybe": "VARCHAR", "zip": "VARCHAR"}
    assert con.execute("SELECT zip FROM raw WHERE id = 30001").fetchone() == ("00042",)
    con.close()

    (tmp_path / "in.csv").write_text("id,maybe,zip\n", encoding="utf-8")
    result = cli("run", "typed", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert con.execute("SELECT count(*) FROM typed").fetchone() == (0,)
