"""Typed state values, the incremental filter and the resume helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from conduit_core.batch import Batch
from conduit_core.config.models import IncrementalConfig
from conduit_core.connectors.files import skip_rows
from conduit_core.engine.incremental import IncrementalFilter
from conduit_core.errors import ConfigError
from conduit_core.state.values import cast_value, decode_value, encode_value, parse_duration, subtract


@pytest.mark.parametrize(("value", "data_type"), [
    (10, pa.int64()), (2**62, pa.int64()), (1.25, pa.float64()), ("it's", pa.string()),
    (date(2024, 2, 29), pa.date32()), (Decimal("123.4500"), pa.decimal128(12, 4)),
    (datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), pa.timestamp("us", "UTC")),
    (datetime(2024, 1, 2, 3, 4, 5, 6), pa.timestamp("us")),
])
def test_values_round_trip_with_their_type(value: object, data_type: pa.DataType) -> None:
    scalar = pa.scalar(value, data_type)
    back = decode_value(encode_value(scalar))
    assert back.type == data_type
    assert back.as_py() == value


def test_durations_and_lookback() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2 hours") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    ts = pa.scalar(datetime(2024, 1, 1, 12, tzinfo=UTC), pa.timestamp("us", "UTC"))
    assert subtract(ts, "2h").as_py() == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert subtract(pa.scalar(100, pa.int64()), 5).as_py() == 95
    with pytest.raises(ConfigError, match="duration"):
        subtract(pa.scalar(100, pa.int64()), "5m")


def _batch(ids: list[int | None]) -> Batch:
    return Batch(pa.record_batch({"id": pa.array(ids, pa.int64())}), position={"rows": len(ids)})


def test_filter_is_strict_typed_and_tracks_the_largest_value() -> None:
    inc = IncrementalFilter(IncrementalConfig(column="id"), pa.scalar(9, pa.int64()))
    kept, dropped, _ = inc.apply(_batch([8, 9, 10, None, 11]))
    assert kept.data.column("id").to_pylist() == [10, 11]
    assert dropped == 3  # 8, the boundary 9 itself, and the NULL
    inc.apply(_batch([12, 3]))
    assert inc.new_mark().as_py() == 12


def test_filter_casts_a_text_initial_value_to_the_column_type() -> None:
    inc = IncrementalFilter(IncrementalConfig(column="day", initial_value="2024-01-02"), None)
    batch = Batch(pa.record_batch({"day": pa.array([date(2024, 1, 1), date(2024, 1, 3)], pa.date32())}))
    kept, dropped, _ = inc.apply(batch)
    assert (kept.num_rows, dropped) == (1, 1)
    assert inc.new_mark().as_py() == date(2024, 1, 3)
    with pytest.raises(ConfigError, match="cannot be compared"):
        IncrementalFilter(IncrementalConfig(column="id", initial_value="abc"), None).apply(_batch([1]))


def test_no_new_rows_keeps_the_old_mark() -> None:
    inc = IncrementalFilter(IncrementalConfig(column="id"), pa.scalar(50, pa.int64()))
    inc.apply(_batch([1, 2]))
    assert inc.new_mark().as_py() == 50


def test_skip_rows_slices_across_batches() -> None:
    batches = [Batch(pa.record_batch({"i": list(range(s, s + 4))}), first_row=s + 1) for s in (0, 4, 8)]
    rest = list(skip_rows(iter(batches), 6))
    assert [b.data.column("i").to_pylist() for b in rest] == [[6, 7], [8, 9, 10, 11]]
    assert rest[0].first_row == 7


def test_a_number_is_cast_to_a_decimal_by_its_value_not_by_its_type() -> None:
    """Arrow refuses int64 -> decimal(12,2) for every value (it needs precision 21); a range check's bound
    ``min_value: -1000000000`` on a decimal(12,2) column must still work, exactly."""
    target = pa.decimal128(12, 2)
    assert cast_value(pa.scalar(-1_000_000_000), target, "bound").as_py() == Decimal("-1000000000.00")
    assert cast_value(pa.scalar(2.5), target, "bound").as_py() == Decimal("2.50")
    with pytest.raises(ConfigError, match="cannot be compared"):
        cast_value(pa.scalar(10**12), target, "bound")  # 13 digits do not fit decimal(12,2)
    with pytest.raises(ConfigError, match="cannot be compared"):
        cast_value(pa.scalar(0.005), target, "bound")  # the bound itself would be rounded
