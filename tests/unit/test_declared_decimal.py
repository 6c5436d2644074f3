"""A declared decimal over a float column: the number as written, never its binary expansion or a rounding."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.config.models import DeclaredColumn
from conduit_core.schema.declared import DeclaredSchema


def test_floats_become_the_decimals_they_are_written_as() -> None:
    # CSV reads 84416.54 as the double nearest to it (84416.539999...); Arrow's cast cuts that at the scale
    # or refuses it, so every such row used to go to the dead-letter queue.
    values = [84416.54, -511.71, 0.1, 12.345, None, 1e-5, float("nan")]
    for float_type in (pa.float64(), pa.float32()):
        batch = Batch(pa.record_batch({"amount": pa.array(values, float_type)}))
        coerced, rejects = DeclaredSchema({"amount": DeclaredColumn(type="decimal(12,2)")}).coerce(batch)
        assert coerced.data.column("amount").to_pylist() == [
            Decimal("84416.54"), Decimal("-511.71"), Decimal("0.10"), None]
        # 12.345 and 0.00001 would be rounded to fit the scale, and NaN is no decimal: each row is rejected.
        assert sorted(rejects) == [3, 5, 6], float_type


def test_the_fast_path_gives_what_the_text_of_each_float_gives() -> None:
    """Floats that fit the scale become decimals without going through text; every value must come out as the
    text path makes it (the shortest text of the float, cast exactly), also in a slice with NULLs."""
    rng = np.random.default_rng(7)
    for scale in (0, 2, 4):
        target = pa.decimal128(18, scale)
        values = np.round(rng.uniform(-1e9, 1e9, 20_000), scale)
        values[::97] = -0.0
        floats = pa.array(values, mask=np.arange(len(values)) % 13 == 0).slice(5, 15_000)
        fast = DeclaredSchema({"x": DeclaredColumn(type=f"decimal(18,{scale})")}).coerce(
            Batch(pa.record_batch({"x": floats})))[0].data.column("x")
        assert fast.type == target
        assert fast.equals(pc.cast(pc.cast(floats, pa.string()), target))


def test_floats_beyond_the_fast_path_still_convert_exactly() -> None:
    # 2**53 + 2 reads back as itself, but at that size neighbouring doubles are 2 apart, wider than the scale's
    # step: the text path decides.
    batch = Batch(pa.record_batch({"x": pa.array([2.0**53 + 2, 1.5])}))
    coerced, rejects = DeclaredSchema({"x": DeclaredColumn(type="decimal(38,2)")}).coerce(batch)
    assert coerced.data.column("x").to_pylist() == [Decimal("9007199254740994.00"), Decimal("1.50")]
    assert rejects == {}
