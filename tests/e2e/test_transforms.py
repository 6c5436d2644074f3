"""Transform steps through `conduit run`, read back in full from DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from conduit_core import pandas_step
from tests.conftest import CliRunner

ROWS = 30_000


def shout(batch: pa.RecordBatch, column: str = "name") -> pa.RecordBatch:
    """A Python step (module:function) used by the test below."""
    import pyarrow.compute as pc

    index = batch.schema.get_field_index(column)
    return batch.set_column(index, column, pc.utf8_upper(batch.column(column)))


@pandas_step
def add_label(frame: Any, prefix: str = "#") -> Any:
    """A step written with pandas (conduit_core.pandas_step), used by the test below."""
    frame["label"] = prefix + frame["id"].astype("string[pyarrow]")
    return frame


def _csv(path: Path) -> None:
    lines = ["cust_id,name,amount,category,note"]
    for i in range(1, ROWS + 1):
        amount = "oops" if i % 1000 == 0 else f"{(i % 50) - 5}.{i % 100:02d}"
        lines.append(f"{i},name {i},{amount},{'test' if i % 7 == 0 else 'real'},note {i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _expected() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(1, ROWS + 1):
        if i % 1000 == 0:
            continue  # the cast sends 'oops' to the dead-letter queue
        amount = Decimal(f"{(i % 50) - 5}.{i % 100:02d}")
        if amount <= 0 or i % 7 == 0:
            continue  # filtered
        rows.append((i, f"NAME {i}", amount, round(amount * Decimal("0.92"), 2), f"{i}-real"))
    return rows


TRANSFORMS = """\
    transforms:
      - rename: {cust_id: customer_id}
      - drop: [note]
      - cast: {amount: "decimal(12,2)"}
      - filter: "amount > 0 AND category <> 'test'"
      - derive: {amount_eur: "round(amount * 0.92, 2)"}
      - sql: "SELECT customer_id, name, amount, amount_eur, customer_id::VARCHAR || '-' || category AS tag FROM batch"
      - {name: shout, uses: "tests.e2e.test_transforms:shout", with: {column: name}}
"""


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_every_step_in_order_with_its_counts(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path],
                                            kind: str, request: pytest.FixtureRequest) -> None:
    _csv(tmp_path / "in.csv")
    if kind == "duckdb":
        destination = "{name: d, type: duckdb, path: out.duckdb}"
    else:
        pg, dsn = request.getfixturevalue("pg"), request.getfixturevalue("postgres_dsn")
        destination = f'{{name: d, type: postgresql, dsn: "{dsn}", schema: {pg.schema}}}'
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{destination}]
    resources:
      - name: orders
        source: s
        destination: d
{TRANSFORMS.replace("    ", "        ", 1).replace(chr(10) + "      ", chr(10) + "          ")}
    """)
    result = cli("run", "--no-progress", "--json", "--batch-size", "4000", env={"PYTHONPATH": str(Path.cwd())})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)["resources"][0]
    expected = _expected()
    dlq = ROWS // 1000
    assert (report["rows_read"], report["rows_written"], report["rows_dlq"]) == (ROWS, len(expected), dlq)
    assert report["rows_filtered"] == ROWS - dlq - len(expected)
    steps = {s["step"]: s for s in report["steps"]}
    assert (steps["cast #3"]["rows_in"], steps["cast #3"]["rows_dlq"]) == (ROWS, dlq)
    assert steps["filter #4"]["rows_filtered"] == ROWS - dlq - len(expected)
    assert steps["shout"]["rows_out"] == len(expected)
    query = "SELECT customer_id, name, amount, amount_eur, tag FROM orders ORDER BY customer_id"
    if kind == "duckdb":
        with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
            actual = con.sql(query).fetchall()
    else:
        actual = request.getfixturevalue("pg").execute(query).fetchall()
    assert [tuple(r) for r in actual] == expected
    rejected = [json.loads(line) for path in (tmp_path / ".conduit" / "errors" / "orders").glob("*.jsonl")
                for line in path.read_text().splitlines()]
    assert sorted(e["row"] for e in rejected) == list(range(1000, ROWS + 1, 1000))
    assert {e["check"] for e in rejected} == {"cast #3: cast to decimal(12,2)"}
    assert rejected[0]["record"]["cust_id"] == 1000  # the record as read, before the rename
    # The target holds the rows after the steps: schema-compare samples them so, and sees no drift.
    compared = cli("schema-compare", "orders", "--against", "destination", "--json",
                   env={"PYTHONPATH": str(Path.cwd())})
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert json.loads(compared.stdout)["changes"] == []


def test_a_step_naming_a_column_that_is_not_there_is_a_preflight_problem(tmp_path: Path, cli: CliRunner,
                                                                        write_config: Callable[[str], Path]) -> None:
    _csv(tmp_path / "in.csv")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - name: orders
        source: s
        destination: d
        primary_key: [customer_id]
        mode: merge
        transforms: [{rename: {cust_idd: customer_id}}]
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "column 'cust_idd' is not in the data (did you mean 'cust_id'?)" in result.stderr
    assert not (tmp_path / "out.duckdb").exists()


def test_sql_that_needs_the_whole_stream_is_a_config_error(tmp_path: Path, cli: CliRunner,
                                                          write_config: Callable[[str], Path]) -> None:
    _csv(tmp_path / "in.csv")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - name: orders
        source: s
        destination: d
        transforms:
          - sql: "SELECT * FROM batch ORDER BY amount"
          - {filter: "x > 1", derive: {y: "1"}}
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ORDER BY would apply to each batch" in result.stderr
    assert "takes exactly one of" in result.stderr
    assert "resources[0].transforms[0]" in result.stderr


def test_a_pandas_step_changes_no_value_it_was_not_asked_to(tmp_path: Path, cli: CliRunner,
                                                           write_config: Callable[[str], Path]) -> None:
    """NumPy-backed pandas would turn an integer column with NULLs into float64 and round 2**62 + 1; the
    adapter hands the step Arrow-backed columns, so the big integers, NULLs and decimals arrive unchanged."""
    big = 2**62 + 1
    (tmp_path / "in.csv").write_text(f"id,big,price\n1,{big},0.10\n2,,12345678901234567.25\n3,{big + 2},\n",
                                     encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - name: items
        source: s
        destination: d
        transforms: [{uses: "tests.e2e.test_transforms:add_label", with: {prefix: "item-"}}]
    """)
    result = cli("run", "--no-progress", env={"PYTHONPATH": str(Path.cwd())})
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT id, big, CAST(price AS VARCHAR), label FROM items ORDER BY id").fetchall()
    assert rows == [(1, big, "0.10", "item-1"), (2, None, "12345678901234567.25", "item-2"),
                    (3, big + 2, None, "item-3")]
