"""Type round trips and edge cases against real SQLite, DuckDB and pyarrow engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from conduit_core.batch import Batch
from conduit_core.connectors.base import BaseSource, ReadRequest, WriteMode, WriteTarget
from conduit_core.connectors.duckdb import DuckDBDestination, DuckDBSource
from conduit_core.connectors.sqlite import SQLiteDestination, SQLiteSource
from conduit_core.engine.results import ResourceResult
from conduit_core.engine.stream import stream_resource
from conduit_core.errors import DataError
from conduit_core.observe.progress import NoProgress

TABLE = pa.table({
    "i": pa.array([1, None, -(2**62)], pa.int64()),
    "f": pa.array([1.5, None, float("inf")], pa.float64()),
    "b": pa.array([True, None, False]),
    "s": pa.array(["x", None, ""]),
    "d": pa.array([Decimal("12345678901234567890.12"), None, Decimal("-0.01")], pa.decimal128(22, 2)),
    "day": pa.array([date(2024, 2, 29), None, date(1970, 1, 1)], pa.date32()),
    "ts": pa.array([datetime(2024, 1, 1, 12, 30, 15, 123456), None, datetime(1999, 12, 31)], pa.timestamp("us")),
    "tz": pa.array([datetime(2024, 1, 1, 12, tzinfo=UTC), None, datetime(2000, 6, 1, tzinfo=UTC)],
                   pa.timestamp("us", "UTC")),
})


class TableSource(BaseSource):
    """Serves an in-memory Arrow table (a stand-in source; the destination and reader are real)."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__({})
        self.table = table

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        for data in self.table.to_batches(max_chunksize=request.batch_size):
            yield Batch(data)


def _load(destination: object, table: pa.Table, mode: WriteMode = WriteMode.APPEND,
          key: tuple[str, ...] = ()) -> None:
    result = ResourceResult(resource="t", source="s", destination="d", mode=str(mode))
    try:
        stream_resource(TableSource(table).read_batches(ReadRequest(batch_size=2)), destination,  # type: ignore[arg-type]
                        WriteTarget("t", mode, "t", primary_key=key), result, NoProgress())
    finally:
        destination.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("make_dest", "make_src"), [
    (lambda p: SQLiteDestination({"path": p / "t.sqlite"}), lambda p: SQLiteSource({"path": p / "t.sqlite",
                                                                                      "table": "t"})),
    (lambda p: DuckDBDestination({"path": p / "t.duckdb"}), lambda p: DuckDBSource({"path": p / "t.duckdb",
                                                                                     "table": "t"})),
], ids=["sqlite", "duckdb"])
def test_every_type_round_trips(tmp_path: Path, make_dest: object, make_src: object) -> None:
    _load(make_dest(tmp_path), TABLE)  # type: ignore[operator]
    source = make_src(tmp_path)  # type: ignore[operator]
    back = pa.Table.from_batches([b.data for b in source.read_batches(ReadRequest(batch_size=2))])
    assert back.num_rows == 3
    for name in TABLE.column_names:
        got = back.column(name).to_pylist()
        want = TABLE.column(name).to_pylist()
        assert got == want, name


def test_merge_rejects_null_keys_and_keeps_the_table(tmp_path: Path) -> None:
    good = pa.table({"id": [1, 2], "v": ["a", "b"]})
    _load(SQLiteDestination({"path": tmp_path / "m.sqlite"}), good, WriteMode.MERGE, ("id",))
    bad = pa.table({"id": [None, 3], "v": ["x", "y"]}, schema=good.schema)
    with pytest.raises(DataError, match="NULL primary key"):
        _load(SQLiteDestination({"path": tmp_path / "m.sqlite"}), bad, WriteMode.MERGE, ("id",))
    source = SQLiteSource({"path": tmp_path / "m.sqlite", "table": "t"})
    rows = [r for b in source.read_batches(ReadRequest()) for r in b.data.to_pylist()]
    assert rows == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]


def test_sqlite_query_with_all_null_first_batch(tmp_path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "q.sqlite")
    con.execute("CREATE TABLE t (a INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(None,), (None,), (5,)])
    con.commit()
    con.close()
    source = SQLiteSource({"path": tmp_path / "q.sqlite", "query": "SELECT a FROM t ORDER BY a IS NULL DESC"})
    batches = list(source.read_batches(ReadRequest(batch_size=2)))
    # With no declared type, an all-NULL first batch fixes the column as text; 5 then arrives as "5".
    assert [b.data.schema.field("a").type for b in batches] == [pa.string(), pa.string()]
    assert [v for b in batches for v in b.data.column(0).to_pylist()] == [None, None, "5"]
