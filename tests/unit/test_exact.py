"""Numbers from text: the type chosen holds every value exactly, and later values that would change fail."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from conduit_core.schema.exact import Inexact, NumberText, convert, decide


@pytest.mark.parametrize(("values", "inferred", "expected"), [
    (["1", "22", None, "-3"], pa.int64(), pa.int64()),
    (["01234", "5"], pa.int64(), pa.string()),           # a leading zero is part of the value: text
    (["-01", "5"], pa.int64(), pa.string()),
    (["0", "0.5", "-0.25"], pa.float64(), pa.float64()),  # a lone zero is not a leading zero
    (["007.5"], pa.float64(), pa.string()),
    (["99999999999999999999", "1"], pa.float64(), pa.decimal128(38, 0)),  # beyond int64: never a double
    (["18446744073709551615", "1"], pa.int64(), pa.decimal128(38, 0)),    # an unsigned guess beyond int64
    (["0.12345678901234567890", "3"], pa.float64(), pa.decimal128(38, 20)),
    (["1.5", "2.25", "1e5", "inf", "NaN"], pa.float64(), pa.float64()),
    (["1e400"], pa.float64(), pa.string()),              # infinity is not the number written
    (["1e-400"], pa.float64(), pa.string()),             # nor is zero
    (["1" * 39], pa.float64(), pa.string()),             # more digits than any decimal128
    (["1.23456789012345678e5"], pa.float64(), pa.string()),  # exponent notation with 18 digits
    ([" 12", "3 "], pa.int64(), pa.int64()),                # pyarrow reads them as numbers: so do we
])
def test_decide_picks_a_type_that_holds_every_value(values: list[str | None], inferred: pa.DataType,
                                                     expected: pa.DataType) -> None:
    text = pa.array(values, pa.string())
    chosen = decide(text, inferred)
    assert chosen == expected
    converted = convert(text, chosen)
    if pa.types.is_decimal(chosen):
        assert [str(v) if v is not None else None for v in converted.to_pylist()] == [
            str(Decimal(v).quantize(Decimal(1).scaleb(-chosen.scale))) if v is not None else None for v in values]


@pytest.mark.parametrize(("value", "target", "why"), [
    ("01234", pa.int64(), "leading zero"),
    ("+007", pa.int64(), "leading zero"),
    ("9223372036854775808", pa.int64(), "beyond the range of the type"),
    ("2.5", pa.int64(), "is not a whole number"),  # never truncated to 2
    ("oops", pa.float64(), "is not a number"),
    ("0.1234567890123456789", pa.float64(), "cannot be held exactly by a float64"),
    ("1e309", pa.float64(), "cannot be held exactly by a float64"),
    ("12.345", pa.decimal128(38, 2), "more digits than the type holds"),
])
def test_convert_refuses_a_later_value_that_would_change(value: str, target: pa.DataType, why: str) -> None:
    text = pa.array(["1", None, "7", value, "8"], pa.string())
    with pytest.raises(Inexact) as info:
        convert(text, target)
    assert (info.value.index, info.value.value) == (3, value)
    assert why in info.value.why


def test_convert_reads_values_inside_a_slice() -> None:
    """Offsets into the buffers are relative to the slice: a leading zero just outside it does not count."""
    text = pa.array(["0123", "5", "6", "0987"], pa.string()).slice(1, 2)
    assert convert(text, pa.int64()).to_pylist() == [5, 6]


def test_blocks_merge_into_a_type_for_the_whole_input() -> None:
    """What JSON readers see: the first block alone would say int64, the second float64; together they need
    a decimal, since 19-digit integers are not exact in a float64."""
    first = NumberText.of(pa.array(["1234567890123456789", "2"]))
    second = NumberText.of(pa.array(["0.5", None]))
    assert first.type(pa.int64()) == pa.int64()
    assert second.type(pa.int64()) == pa.float64()
    assert first.merge(second).type(pa.int64()) == pa.decimal128(38, 1)
    assert NumberText().merge(second).type(pa.int64()) == pa.float64()
    assert NumberText.of(pa.array([None], pa.string())).type(pa.float64()) == pa.float64()
    assert second.merge(NumberText.of(pa.array(["007"]))).type(pa.float64()) == pa.string()
