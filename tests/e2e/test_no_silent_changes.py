"""Nothing changed: every value that reaches a destination equals the source value, or the run says why not.

Each test reads the real destination back (DuckDB, Parquet, PostgreSQL) and compares values, never the
engine's own counters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

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


NUMBERS = [
    "big,zip,precise,edge,plain,code",
    "99999999999999999999,01234,0.12345678901234567890,9223372036854775807,1.5,007.5",
    "1,00501,3,-9223372036854775808,2.25,12",
]


def test_csv_numbers_keep_every_digit(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path],
                                      pg: Any, postgres_dsn: str) -> None:
    """pyarrow's guess turned 99999999999999999999 into 1e20, 01234 into 1234 and cut a 20-digit fraction
    to a double. Now each column gets a type that holds every value: decimal(38,0), text, decimal(38,20)."""
    (tmp_path / "in.csv").write_text("\n".join(NUMBERS) + "\n", encoding="utf-8")
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations:
      - {{name: db, type: duckdb, path: out.duckdb}}
      - {{name: lake, type: parquet, path: out.parquet}}
      - {{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
    resources:
      - {{name: to_db, source: s, destination: db, table: n}}
      - {{name: to_lake, source: s, destination: lake}}
      - {{name: to_pg, source: s, destination: pg, table: n}}
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [
        ("99999999999999999999", "01234", "0.12345678901234567890", "9223372036854775807", "1.5", "007.5"),
        ("1", "00501", "3.00000000000000000000", "-9223372036854775808", "2.25", "12"),
    ]
    texts = ", ".join(f"CAST({c} AS VARCHAR)" for c in NUMBERS[0].split(","))
    assert _duck(tmp_path / "out.duckdb", f"SELECT {texts} FROM n ORDER BY edge DESC") == expected
    assert [tuple(str(v) for v in row.values()) for row in pq.read_table(tmp_path / "out.parquet").to_pylist()] \
        == expected
    rows = pg.execute(f"SELECT {', '.join(f'{c}::text' for c in NUMBERS[0].split(','))} FROM n "
                      "ORDER BY edge DESC").fetchall()
    assert rows == expected
    types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name = 'n'").fetchall())
    assert types == {"big": "numeric", "zip": "text", "precise": "numeric", "edge": "bigint",
                     "plain": "double precision", "code": "text"}


def test_a_leading_zero_after_the_first_block_stops_the_load(tmp_path: Path, cli: CliRunner,
                                                             write_config: Callable[[str], Path]) -> None:
    """Rows far past the sample the type came from: '01234' in an integer column is never read as 1234."""
    rows = [f"{i},{10000 + i}" for i in range(1, 300_001)] + ["300001,01234"]
    (tmp_path / "in.csv").write_text("id,zip\n" + "\n".join(rows) + "\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: db, type: duckdb, path: out.duckdb}]
    resources: [{name: r, source: s, destination: db}]
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for needle in ("in.csv:300002", "row 300001", "column 'zip'", "'01234' has a leading zero",
                   "column_types: {zip: string}"):
        assert needle in result.stderr, (needle, result.stderr)
    assert _duck(tmp_path / "out.duckdb", "SELECT count(*) FROM information_schema.tables WHERE table_name = 'r'") \
        == [(0,)]


def _ndjson(path: Path, records: list[str]) -> None:
    path.write_text("\n".join(records) + "\n", encoding="utf-8")


def test_ndjson_types_and_columns_cover_the_whole_input(tmp_path: Path, cli: CliRunner,
                                                        write_config: Callable[[str], Path]) -> None:
    """Types used to come from the first 20,480 records: a later 25001.5 was rounded to 25002 and a key first
    seen later was dropped. Now every key of every record is a column, and numbers keep their digits."""
    records = [f'{{"id": {i}, "v": {i}}}' for i in range(1, 30_001)]
    records[25_000] = '{"id": 25001, "v": 25001.5}'
    records[26_000] = '{"id": 26001, "v": 26001, "late": "hello"}'
    records[27_000] = '{"id": 27001, "v": 27001, "big": 99999999999999999999}'
    _ndjson(tmp_path / "a.ndjson", records[:15_000])
    _ndjson(tmp_path / "b.ndjson", records[15_000:])  # a glob: the keys of every file, not just the first
    write_config("""\
    sources: [{name: s, type: ndjson, path: "*.ndjson"}]
    destinations: [{name: db, type: duckdb, path: out.duckdb}, {name: lake, type: parquet, path: out.parquet}]
    resources: [{name: to_db, source: s, destination: db, table: t}, {name: to_lake, source: s, destination: lake}]
    """)
    result = cli("run", "--no-progress", "--batch-size", "5000")
    assert result.returncode == 0, result.stdout + result.stderr
    query = ("SELECT id, v, late, CAST(big AS VARCHAR) FROM t WHERE id IN (1, 25001, 26001, 27001) ORDER BY id")
    expected = [(1, 1.0, None, None), (25001, 25001.5, None, None), (26001, 26001.0, "hello", None),
                (27001, 27001.0, None, "99999999999999999999")]
    assert _duck(tmp_path / "out.duckdb", query) == expected
    assert _duck(tmp_path / "out.duckdb", "SELECT count(*), count(DISTINCT id), sum(v) FROM t") == [
        (30_000, 30_000, sum(range(1, 30_001)) + 0.5)]
    lake = pq.read_table(tmp_path / "out.parquet")
    assert lake.column_names == ["id", "v", "late", "big"]
    rows = {r["id"]: r for r in lake.to_pylist()}
    assert (rows[25001]["v"], rows[26001]["late"], str(rows[27001]["big"])) == (25001.5, "hello",
                                                                                "99999999999999999999")


def test_repeated_empty_and_case_colliding_names_get_one_renaming_everywhere(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path], pg: Any, postgres_dsn: str,
        mysql: Any, mysql_dsn: str) -> None:
    """`id,name,name` used to give Parquet two `name` columns (unreadable) and crash DuckDB; `p95` beside
    `P95` failed in DuckDB. Now: `name_2`, `column_4`, and `P95_2` where identifiers ignore case."""
    (tmp_path / "in.csv").write_text("id,name,name,,p95,P95\n1,a,b,c,10,20\n2,d,e,f,30,40\n", encoding="utf-8")
    mysql_url = mysql_dsn.rsplit("/", 1)[0] + f"/{mysql.database}"
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations:
      - {{name: db, type: duckdb, path: out.duckdb}}
      - {{name: lake, type: parquet, path: out.parquet}}
      - {{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
      - {{name: my, type: mysql, dsn: "{mysql_url}"}}
    resources:
      - {{name: to_db, source: s, destination: db, table: t}}
      - {{name: to_lake, source: s, destination: lake}}
      - {{name: to_pg, source: s, destination: pg, table: t}}
      - {{name: to_my, source: s, destination: my, table: t}}
    """)
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "renamed column(s) so every name is unique" in result.stderr
    insensitive = ["id", "name", "name_2", "column_4", "p95", "P95_2"]
    sensitive = ["id", "name", "name_2", "column_4", "p95", "P95"]
    values = [(1, "a", "b", "c", 10, 20), (2, "d", "e", "f", 30, 40)]
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert [c[0] for c in con.sql("DESCRIBE t").fetchall()] == insensitive
        assert con.sql("SELECT * FROM t ORDER BY id").fetchall() == values
    lake = pq.read_table(tmp_path / "out.parquet")
    assert lake.column_names == sensitive
    assert [tuple(r.values()) for r in lake.to_pylist()] == values
    assert [d.name for d in pg.execute("SELECT * FROM t ORDER BY id").description] == sensitive
    assert pg.execute("SELECT * FROM t ORDER BY id").fetchall() == values
    with mysql.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")
        assert [d[0] for d in cur.description] == insensitive
        assert list(cur.fetchall()) == values
    manifest = {r["resource"]: r["renamed_columns"] for r in json.loads(result.stdout)["resources"]}
    assert [(r["position"], r["original"], r["name"]) for r in manifest["to_db"]] == [
        (3, "name", "name_2"), (4, "", "column_4"), (6, "P95", "P95_2")]
    assert [(r["position"], r["original"], r["name"]) for r in manifest["to_lake"]] == [
        (3, "name", "name_2"), (4, "", "column_4")]


def test_names_a_destination_would_cut_are_refused_at_preflight(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path], pg: Any, postgres_dsn: str,
        mysql: Any, mysql_dsn: str) -> None:
    """PostgreSQL cuts identifiers to 63 bytes at CREATE (then fails with 'does not exist' or 'specified more
    than once'), and a CREATE of 2,000 columns failed with the whole 29 KB statement in the message."""
    long_name = "measurement_" + "x" * 60  # 72 bytes
    (tmp_path / "long.csv").write_text(f"id,{long_name}\n1,2\n", encoding="utf-8")
    wide = ",".join(f"c{i}" for i in range(2000))
    (tmp_path / "wide.csv").write_text(f"{wide}\n{','.join('1' * 2000)}\n", encoding="utf-8")
    mysql_url = mysql_dsn.rsplit("/", 1)[0] + f"/{mysql.database}"
    write_config(f"""\
    sources: [{{name: long, type: csv, path: long.csv}}, {{name: wide, type: csv, path: wide.csv}}]
    destinations:
      - {{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
      - {{name: my, type: mysql, dsn: "{mysql_url}"}}
    resources:
      - {{name: long_pg, source: long, destination: pg}}
      - {{name: long_my, source: long, destination: my}}
      - {{name: wide_pg, source: wide, destination: pg}}
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "long_pg: columns: column name 'measurement_xxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is 72 bytes; Postgres " \
           "identifiers hold at most 63" in result.stderr
    assert "long_my: columns: column name" in result.stderr
    assert "is 72 characters; MySQL identifiers hold at most 64" in result.stderr
    assert "wide_pg: columns: the source has 2000 columns; a Postgres table holds at most 1600" in result.stderr
    assert len(result.stderr) < 4000
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone() == (0,)


def test_appending_to_a_parquet_file_casts_to_its_types_where_nothing_changes(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    """A CSV reads whole seconds as timestamp[s]; the Parquet file conduit wrote holds them as timestamp[ms]. The
    second append used to be refused ("types differ"); the new rows now take the file's types."""
    config = """\
    sources: [{name: s, type: csv, path: %s}]
    destinations: [{name: lake, type: parquet, path: out.parquet}]
    resources: [{name: events, source: s, destination: lake, mode: append}]
    """
    (tmp_path / "a.csv").write_text("id,at\n1,2024-01-01 10:00:00\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,at\n2,2024-01-02 11:30:05\n", encoding="utf-8")
    for name in ("a.csv", "b.csv"):
        write_config(config % name)
        result = cli("run", "--no-progress")
        assert result.returncode == 0, result.stdout + result.stderr
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("at").type) == "timestamp[ms]"
    assert table.to_pylist() == [{"id": 1, "at": datetime(2024, 1, 1, 10, 0)},
                                 {"id": 2, "at": datetime(2024, 1, 2, 11, 30, 5)}]


def test_nanoseconds_are_kept_or_refused_never_cut(tmp_path: Path, cli: CliRunner,
                                                   write_config: Callable[[str], Path], pg: Any,
                                                   postgres_dsn: str) -> None:
    """A CSV reads `10:00:00.123456789` as timestamp[ns]; PostgreSQL keeps microseconds and cut it to .123456
    without a word. DuckDB keeps it whole; PostgreSQL now refuses, and takes it read as text.
    Numbers padded with spaces (which pyarrow reads as numbers) load as those numbers."""
    (tmp_path / "in.csv").write_text("id,amount,at\n 1,1.5 ,2024-01-01 10:00:00.123456789\n2,2.5,"
                                     "2024-01-01 10:00:00.5\n", encoding="utf-8")
    write_config(f"""\
    sources:
      - {{name: s, type: csv, path: in.csv}}
      - {{name: text, type: csv, path: in.csv, column_types: {{at: string}}}}
    destinations:
      - {{name: db, type: duckdb, path: out.duckdb}}
      - {{name: pg, type: postgresql, dsn: "{postgres_dsn}", schema: {pg.schema}}}
    resources:
      - {{name: to_db, source: s, destination: db, table: t}}
      - {{name: to_pg, source: s, destination: pg, table: t}}
      - {{name: as_text, source: text, destination: pg, table: t_text}}
    """)
    result = cli("run", "--no-progress", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    by_name = {r["resource"]: r for r in json.loads(result.stdout)["resources"]}
    assert by_name["to_db"]["status"] == "success"
    assert "value 2024-01-01 10:00:00.123456789 has a precision finer than PostgreSQL keeps" in (
        by_name["to_pg"]["error"] or "")
    assert by_name["as_text"]["status"] == "success", by_name["as_text"]["error"]
    assert _duck(tmp_path / "out.duckdb", "SELECT id, amount, CAST(\"at\" AS VARCHAR) FROM t ORDER BY id") == [
        (1, 1.5, "2024-01-01 10:00:00.123456789"), (2, 2.5, "2024-01-01 10:00:00.5")]
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 't'"
                      ).fetchone() == (0,)
    assert pg.execute("SELECT id, amount, at FROM t_text ORDER BY id").fetchall() == [
        (1, 1.5, "2024-01-01 10:00:00.123456789"), (2, 2.5, "2024-01-01 10:00:00.5")]
