"""The DuckDB destination bounds DuckDB's memory while it loads (its buffer pool otherwise keeps what a load
writes, up to 80% of RAM: a load's memory grew with its rows). Measured by benchmarks/bench_files.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from conduit_core.connectors.base import WriteMode, WriteTarget
from conduit_core.connectors.duckdb import DuckDBDestination


def _limit_while_loading(path: Path, **options: object) -> str:
    destination = DuckDBDestination({"path": str(path), **options})
    try:
        destination.begin(WriteTarget(resource="r", mode=WriteMode.APPEND), pa.schema([("id", pa.int64())]))
        rows = destination._con.execute("SELECT current_setting('memory_limit')").fetchall()
        destination.commit()
    finally:
        destination.close()
    return str(rows[0][0])


def test_a_load_runs_under_the_configured_memory_limit(tmp_path: Path) -> None:
    assert _limit_while_loading(tmp_path / "a.duckdb") == "488.2 MiB"  # the default, 512MB
    assert _limit_while_loading(tmp_path / "b.duckdb", memory_limit="1GiB") == "1.0 GiB"
    unbounded = _limit_while_loading(tmp_path / "c.duckdb", memory_limit=None)
    assert unbounded.endswith("GiB")  # DuckDB's own: 80% of RAM
    assert float(unbounded.split()[0]) > 1.0


def test_a_memory_limit_without_a_unit_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="memory_limit must be a size with its unit, such as 128MB"):
        DuckDBDestination({"path": str(tmp_path / "d.duckdb"), "memory_limit": "512"})
