"""The Python builder (`conduit_core.pipeline(...)`) end to end: the same run as `conduit run`, read back in
full from DuckDB and PostgreSQL; its mistakes are the same configuration errors; its YAML runs the same."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import conduit_core
from conduit_core.errors import ConfigError
from tests.conftest import CliRunner


def _files(folder: Path) -> list[tuple[int, str, str, str | None]]:
    """orders.csv (with a duplicate, a refund and an unknown customer) and customers.csv; the rows expected."""
    (folder / "orders.csv").write_text(
        "order_id,cust_id,amount\n1,0007,10.50\n2,0008,-3.00\n3,0007,99999999999999999.99\n1,0007,10.50\n"
        "4,0999,5.00\n", encoding="utf-8")
    (folder / "customers.csv").write_text("code,name\n0007,ann\n0008,bob\n", encoding="utf-8")
    return [(1, "0007", "10.50", "ann"), (3, "0007", "99999999999999999.99", "ann"), (4, "0999", "5.00", None)]


def _build(folder: Path, destination: tuple[str, dict[str, str]]) -> conduit_core.PipelineBuilder:
    kind, options = destination
    return (conduit_core.pipeline("orders", base_dir=folder)
            .source("csv", path="orders.csv")
            .lookup("customers", "csv", path="customers.csv")
            .transform(rename={"cust_id": "customer_id"})
            .transform(filter="amount > 0", name="positive")
            .transform(dedupe={"keys": ["order_id"]})
            .transform(join={"with": "customers", "on": {"customer_id": "code"}, "columns": ["name"]})
            .destination(kind, **options))


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_pipeline_built_in_python_runs_like_a_file(tmp_path: Path, kind: str,
                                                     request: pytest.FixtureRequest) -> None:
    expected = _files(tmp_path)
    if kind == "duckdb":
        destination: tuple[str, dict[str, str]] = ("duckdb", {"path": "out.duckdb"})
    else:
        pg = request.getfixturevalue("pg")
        destination = ("postgresql", {"dsn": request.getfixturevalue("postgres_dsn"), "schema": pg.schema})
    result = _build(tmp_path, destination).run()
    assert str(result.status) == "success", result.resources[0].error
    orders = result.resources[0]
    assert (orders.rows_read, orders.rows_written, orders.rows_filtered) == (5, 3, 2)
    assert {s["step"]: s["rows_filtered"] for s in orders.steps}["positive"] == 1
    query = "SELECT order_id, customer_id, CAST(amount AS VARCHAR), name FROM orders ORDER BY order_id"
    if kind == "duckdb":
        with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
            actual = con.sql(query).fetchall()
    else:
        actual = [tuple(r) for r in request.getfixturevalue("pg").execute(query.replace("VARCHAR", "TEXT"))]
    assert actual == expected
    manifest = json.loads((tmp_path / ".conduit" / "runs" / result.run_id / "manifest.json").read_text())
    assert manifest["resources"][0]["rows_written"] == 3


def test_its_mistakes_are_configuration_errors_naming_the_key(tmp_path: Path) -> None:
    _files(tmp_path)
    built = _build(tmp_path, ("duckdb", {"path": "out.duckdb"})).transform(filter="x > 0", derive={"y": "1"})
    with pytest.raises(ConfigError) as caught:
        built.run()
    assert any(issue.path == "resources[0].transforms[4]" and "exactly one of" in issue.message
               for issue in caught.value.issues), caught.value.issues
    with pytest.raises(ConfigError, match="has no destination"):
        conduit_core.pipeline("x", base_dir=tmp_path).source("csv", path="orders.csv").run()
    assert not (tmp_path / "out.duckdb").exists()


def test_its_yaml_is_an_ingest_file_that_loads_the_same(tmp_path: Path, cli: CliRunner) -> None:
    expected = _files(tmp_path)
    (tmp_path / "ingest.yml").write_text(_build(tmp_path, ("duckdb", {"path": "out.duckdb"})).to_yaml(),
                                         encoding="utf-8")
    result = cli("run", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT order_id, customer_id, CAST(amount AS VARCHAR), name FROM orders ORDER BY order_id"
                       ).fetchall() == expected
