from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal

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


def test_a_float_after_integers_is_an_error_not_a_truncation() -> None:
    """from_pylist(schema=...) used to cut 2.5 to 2 when the first batch typed the field as int64."""
    with pytest.raises(DataError) as info:
        list(group_records([{"x": 1}, {"x": 2}, {"x": 3}, {"x": 2.5}], 2))
    assert "field 'x' is 2.5 (double), which earlier records made int64" in info.value.message
    assert (info.value.row, info.value.column) == (4, "x")
    # A float that is a whole number is the same value: it fits.
    batches = list(group_records([{"x": 1}, {"x": 2.0}], 1))
    assert batches[1].column(0).to_pylist() == [2]
    assert batches[1].schema.field("x").type == pa.int64()


def test_integers_are_never_turned_into_doubles() -> None:
    big = 2**70
    assert records_to_batch([{"x": big}, {"x": 1}]).column(0).to_pylist() == [Decimal(big), Decimal(1)]
    mixed = records_to_batch([{"x": 2**60 + 1}, {"x": 0.5}])
    assert mixed.schema.field("x").type == pa.string()
    assert mixed.column(0).to_pylist() == [str(2**60 + 1), "0.5"]
    doubles = pa.schema([("x", pa.float64())])
    assert records_to_batch([{"x": 3}], doubles).column(0).to_pylist() == [3.0]
    with pytest.raises(DataError, match="1152921504606846977"):
        records_to_batch([{"x": 2**60 + 1}], doubles)


def test_a_later_value_must_survive_the_cast_unchanged() -> None:
    """Arrow's safe cast still rounds a float to a decimal's scale: 2.5 into decimal(38, 0) would become 2."""
    decimals = pa.schema([("x", pa.decimal128(38, 0))])
    with pytest.raises(DataError, match=r"2\.5"):
        records_to_batch([{"x": 2.5}], decimals)
    assert records_to_batch([{"x": 3.0}], decimals).column(0).to_pylist() == [Decimal(3)]
    zoned = pa.schema([("at", pa.timestamp("us", "UTC"))])
    from datetime import datetime

    with pytest.raises(DataError):  # a naive time is not an instant: never read as UTC
        records_to_batch([{"at": datetime(2024, 1, 1, 12)}], zoned)
