"""Sources written against the seed contract (``read()`` yielding dicts): values arrive as they were yielded,
or the load stops and says which field of which row would have changed. Read back from DuckDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conduit_core.config import load_config
from conduit_core.config.models import ConnectorEntry, IngestConfig
from conduit_core.connectors.base import BaseSource
from conduit_core.engine import runner
from conduit_core.engine import session as session_module
from conduit_core.engine.results import Status


def _project(write_config: Callable[[str], Path], records: list[dict[str, Any]],
             monkeypatch: pytest.MonkeyPatch) -> IngestConfig:
    class Records(BaseSource):
        def read(self, query: str | None = None) -> Iterator[dict[str, Any]]:
            yield from records

    def build(_entry: ConnectorEntry) -> BaseSource:
        return Records({})

    monkeypatch.setattr(session_module, "source_of", build)
    return load_config(write_config("""\
    sources: [{name: api, type: csv, path: unused.csv}]
    destinations: [{name: db, type: duckdb, path: out.duckdb}]
    resources: [{name: items, source: api, destination: db, batch_size: 2}]
    """), env={})


def test_a_float_in_a_later_batch_stops_the_load(write_config: Callable[[str], Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = _project(write_config, [{"id": 1, "x": 1}, {"id": 2, "x": 2}, {"id": 3, "x": 2.5}], monkeypatch)
    result = runner.run(config, runner.RunOptions(skip_preflight=True))
    r = result.resources[0]
    assert r.status is Status.FAILED
    assert "field 'x' is 2.5 (double), which earlier records made int64" in (r.error or "")
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'").fetchall() \
            == [(0,)]  # nothing half-loaded, and no 2 in place of 2.5


def test_big_integers_arrive_exactly(write_config: Callable[[str], Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    big = 99999999999999999999
    config = _project(write_config, [{"id": 1, "x": big}, {"id": 2, "x": 7}], monkeypatch)
    result = runner.run(config, runner.RunOptions(skip_preflight=True))
    assert result.resources[0].status is Status.SUCCESS, result.resources[0].error
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT id, x FROM items ORDER BY id").fetchall() == [(1, Decimal(big)), (2, Decimal(7))]
