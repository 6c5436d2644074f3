from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from conduit_core.batch import group_records, records_to_batch
from conduit_core.engine.prefetch import prefetch
from conduit_core.errors import DataError


def test_all_null_first_batch_becomes_string_so_later_values_fit() -> None:
    batches = list(group_records([{"a": 1, "b": None}, {"a": 2, "b": None}, {"a": 3, "b": "x"}], 2))
    assert [b.num_rows for b in batches] == [2, 1]
    assert batches[0].schema.field("b").type == pa.string()
    assert batches[1].column(1).to_pylist() == ["x"]


def test_new_field_in_a_later_record_is_an_error_not_a_silent_drop() -> None:
    with pytest.raises(DataError) as info:
        list(group_records([{"a": 1}, {"a": 2, "surprise": 3}], 1))
    assert "'surprise'" in info.value.message
    assert info.value.row == 2


def test_value_that_does_not_fit_the_schema_is_an_error() -> None:
    schema = pa.schema([("a", pa.int64())])
    with pytest.raises(DataError):
        records_to_batch([{"a": "not a number"}], schema)


def test_prefetch_preserves_order_and_propagates_errors() -> None:
    def numbers() -> Iterator[int]:
        yield from range(100)
        msg = "boom"
        raise RuntimeError(msg)

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        seen.extend(prefetch(numbers(), depth=3))
    assert seen == list(range(100))


def test_prefetch_stops_the_producer_when_the_consumer_stops() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 5
    assert not any(t.name == "conduit-prefetch" and t.is_alive() for t in threading.enumerate())


def test_keys_missing_from_the_first_record_are_kept() -> None:
    batch = records_to_batch([{"a": 1}, {"a": 2, "b": 3}])
    assert batch.schema.names == ["a", "b"]
    assert batch.column(1).to_pylist() == [None, 3]
