"""A declared decimal over a float column: the number as written, never its binary expansion or a rounding."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

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
