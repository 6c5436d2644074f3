"""A load that fails half-way leaves every destination exactly as it was (real engines and files)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conduit_core.batch import Batch
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest, WriteMode, WriteTarget
from conduit_core.connectors.csv import CsvDestination
from conduit_core.connectors.duckdb import DuckDBDestination
from conduit_core.connectors.json import NdjsonDestination
from conduit_core.connectors.parquet import ParquetDestination
from conduit_core.connectors.sqlite import SQLiteDestination
from conduit_core.engine.results import ResourceResult
from conduit_core.engine.stream import stream_resource
from conduit_core.errors import DataError
from conduit_core.observe.progress import NoProgress


class Batches(BaseSource):
    """Yields ``batches`` batches of ten rows, then raises if ``fail`` is set."""

    def __init__(self, batches: int, *, fail: bool, start: int = 0) -> None:
        super().__init__({})
        self.batches, self.fail, self.start = batches, fail, start

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        for b in range(self.batches):
            ids = list(range(self.start + b * 10, self.start + b * 10 + 10))
            yield Batch(pa.record_batch({"id": pa.array(ids, pa.int64()), "v": [f"v{i}" for i in ids]}))
        if self.fail:
            msg = "source broke half-way"
            raise DataError(msg)


def _load(destination: BaseDestination, target: WriteTarget, source: BaseSource) -> ResourceResult:
    result = ResourceResult(resource=target.resource, source="s", destination="d", mode=str(target.mode))
    try:
        stream_resource(source.read_batches(ReadRequest(batch_size=10)), destination, target, result, NoProgress())
    finally:
        destination.close()
    return result


def _ids_duckdb(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t ORDER BY id").fetchall()]
    finally:
        con.close()


def _ids_sqlite(path: Path) -> list[int]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t ORDER BY id")]
    finally:
        con.close()


def _ids_parquet(path: Path) -> list[int]:
    return sorted(pq.read_table(path).column("id").to_pylist())


def _ids_csv(path: Path) -> list[int]:
    return sorted(int(line.split(",")[0]) for line in path.read_text().splitlines()[1:])


def _ids_ndjson(path: Path) -> list[int]:
    import json

    return sorted(json.loads(line)["id"] for line in path.read_text().splitlines())


CASES = [
    ("duckdb", lambda p: DuckDBDestination({"path": p / "db.duckdb"}), "db.duckdb", _ids_duckdb),
    ("sqlite", lambda p: SQLiteDestination({"path": p / "db.sqlite"}), "db.sqlite", _ids_sqlite),
    ("parquet", lambda p: ParquetDestination({"path": p / "t.parquet"}), "t.parquet", _ids_parquet),
    ("csv", lambda p: CsvDestination({"path": p / "t.csv"}), "t.csv", _ids_csv),
    ("ndjson", lambda p: NdjsonDestination({"path": p / "t.ndjson"}), "t.ndjson", _ids_ndjson),
]


# Merge is only offered by table destinations (config validation rejects it for files).
COMBINATIONS = [(*case, mode) for case in CASES for mode in WriteMode
                if mode is not WriteMode.MERGE or case[0] in {"duckdb", "sqlite"}]


@pytest.mark.parametrize(("name", "make", "file", "ids", "mode"), COMBINATIONS,
                         ids=[f"{c[0]}-{c[4]}" for c in COMBINATIONS])
def test_failed_load_keeps_previous_contents(tmp_path: Path, name: str, make: object, file: str, ids: object,
                                             mode: WriteMode) -> None:
    destination = make(tmp_path)  # type: ignore[operator]
    assert destination.supports(mode), name
    target = WriteTarget(resource="t", mode=mode, table="t", path=tmp_path / file, primary_key=("id",))
    first = _load(destination, target, Batches(3, fail=False))
    assert first.rows_written == 30
    before = ids(tmp_path / file)  # type: ignore[operator]
    assert before == list(range(30))

    failing = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(DataError, match="half-way"):
        _load(failing, target, Batches(5, fail=True, start=20))
    assert ids(tmp_path / file) == before  # type: ignore[operator]
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"

    again = make(tmp_path)  # type: ignore[operator]
    _load(again, target, Batches(2, fail=False, start=20))
    expected = {
        WriteMode.APPEND: sorted([*range(30), *range(20, 40)]),
        WriteMode.FULL_REFRESH: list(range(20, 40)),
        WriteMode.MERGE: list(range(40)),
    }[mode]
    assert ids(tmp_path / file) == expected  # type: ignore[operator]
