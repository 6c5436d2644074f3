"""What transform steps keep beyond a batch: only types DuckDB gives back unchanged, a resumed dedupe that
refuses to go on without the keys it saw, and a resumed CSV read that does not drop or invent columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from conduit_core.config.models import TransformConfig
from conduit_core.connectors.base import ReadRequest
from conduit_core.connectors.csv import CsvSource
from conduit_core.errors import StateError
from conduit_core.stages.dedupe import StreamingDedupe
from conduit_core.stages.scratch import unstorable


@pytest.mark.parametrize(("kind", "refused"), [
    (pa.month_day_nano_interval(), True),         # DuckDB keeps microseconds of an interval
    (pa.duration("ns"), True),
    (pa.list_(pa.duration("us")), True),          # also inside a list
    (pa.struct([("d", pa.dictionary(pa.int8(), pa.string()))]), True),
    (pa.decimal256(50, 2), True),
    (pa.decimal128(38, 2), False),
    (pa.timestamp("ns", tz="UTC"), False),
    (pa.list_(pa.struct([("x", pa.int64())])), False),
])
def test_unstorable_types_are_refused_not_rounded(kind: pa.DataType, refused: bool) -> None:
    assert (unstorable(pa.schema([pa.field("c", kind)])) is not None) == refused


def test_a_resumed_dedupe_without_its_seen_keys_refuses(tmp_path: Path) -> None:
    config = TransformConfig.model_validate({"dedupe": {"keys": ["id"]}})
    with pytest.raises(StateError, match="the keys it saw before the checkpoint"):
        StreamingDedupe(config, 1, tmp_path / "dedupe-1.duckdb", resumed_at=1000)
    StreamingDedupe(config, 1, tmp_path / "dedupe-1.duckdb", resumed_at=None).close()  # a fresh load starts one


def test_a_resumed_csv_read_keeps_the_columns_the_file_has(tmp_path: Path) -> None:
    """The load's types come from the checkpoint; a file that changed its columns since must show it (the
    tracker then refuses the batch), not lose or invent a column."""
    (tmp_path / "in.csv").write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    source = CsvSource({"path": tmp_path / "in.csv"})
    started = pa.schema([("a", pa.int64()), ("b", pa.int64())])
    (batch,) = list(source.read_batches(ReadRequest(schema=started)))
    assert batch.schema.names == ["a", "b", "c"]
    union = CsvSource({"path": tmp_path / "in.csv", "combine": "union_by_name"})
    with pytest.raises(Exception, match=r"columns \['c'\] are not among the columns the load started with"):
        list(union.read_batches(ReadRequest(schema=started)))
