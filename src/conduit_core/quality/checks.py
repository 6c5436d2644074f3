"""Quality checks, evaluated per batch with Arrow compute (and DuckDB for SQL and cross-batch uniqueness).

Every check yields a boolean mask of the rows that **fail** it. A NULL passes
every check except ``not_null``. ``regex`` must match the whole value.
``expression`` is a SQL predicate over the batch's columns; a row where it is
false or NULL fails. ``unique`` fails every later occurrence of a value, across
all batches of the load, remembering the values in an on-disk DuckDB table so
memory stays bounded.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.config.models import QualityCheckConfig
from conduit_core.connectors.sql import quote_ident
from conduit_core.errors import ConfigError, DataError
from conduit_core.quality.registry import custom, verdict
from conduit_core.stages.scratch import ScratchDB
from conduit_core.state.values import cast_value


def _column(batch: pa.RecordBatch, check: QualityCheckConfig) -> pa.Array:
    assert check.column is not None
    if check.column not in batch.schema.names:
        msg = f"quality check {check.label}: column {check.column!r} is not in the data; columns: {batch.schema.names}"
        raise ConfigError(msg, hint="fix `column:` in quality_checks")
    return batch.column(check.column)


_BOUND_HINT = "write the bound in the column's type (a number, or text such as '2024-01-01' for a date)"


class Checks:
    """The checks of one resource for one load."""

    def __init__(self, checks: tuple[QualityCheckConfig, ...]) -> None:
        self.checks = checks
        self._con = ScratchDB("conduit-quality-")
        self._seen: dict[str, str] = {}
        #: Per check label: the reason each failing row gave (custom validators returning (False, reason)),
        #: aligned with the rows of the batch last checked.
        self.reasons: dict[str, list[str | None]] = {}

    def failed(self, batch: pa.RecordBatch, check: QualityCheckConfig) -> pa.BooleanArray:
        """The rows of ``batch`` that fail ``check`` (and, in ``reasons``, why, where the check says)."""
        self.reasons.pop(check.label, None)
        kind = check.check
        if kind == "expression":
            return self._expression(batch, check)
        values = _column(batch, check)
        if kind == "not_null":
            return pc.is_null(values)
        if kind == "unique":
            return self._unique(values, check)
        if kind == "regex":
            assert check.pattern is not None
            text = values if pa.types.is_string(values.type) else values.cast(pa.string())
            return pc.invert(pc.fill_null(pc.match_substring_regex(text, f"^(?:{check.pattern})$"), True))
        if kind == "range":
            bad = pa.array([False] * len(values))
            if check.min_value is not None:
                low = cast_value(pa.scalar(check.min_value), values.type, f"{check.label}: min_value", _BOUND_HINT)
                bad = pc.or_(bad, pc.less(values, low) if check.min_inclusive else pc.less_equal(values, low))
            if check.max_value is not None:
                high = cast_value(pa.scalar(check.max_value), values.type, f"{check.label}: max_value", _BOUND_HINT)
                bad = pc.or_(bad, pc.greater(values, high) if check.max_inclusive else pc.greater_equal(values, high))
            return pc.fill_null(bad, False)
        if kind == "enum":
            allowed = pa.array(list(check.values or ())).cast(values.type)
            return pc.and_(pc.invert(pc.is_in(values, value_set=allowed)), pc.is_valid(values))
        return self._custom(values, check)

    def _expression(self, batch: pa.RecordBatch, check: QualityCheckConfig) -> pa.BooleanArray:
        import duckdb

        con = self._con()
        con.register("_conduit_batch", batch)
        try:
            table = con.sql(f"SELECT coalesce(({check.sql}), false) AS ok FROM _conduit_batch").to_arrow_table()
        except duckdb.Error as exc:
            msg = f"quality check {check.label}: the expression {check.sql!r} failed: {str(exc).splitlines()[0]}"
            raise ConfigError(msg, hint="the expression is DuckDB SQL over the resource's columns") from None
        finally:
            con.unregister("_conduit_batch")
        return pc.invert(table.column("ok").combine_chunks())

    def _unique(self, values: pa.Array, check: QualityCheckConfig) -> pa.BooleanArray:
        import numpy as np

        con = self._con()
        seen = quote_ident(self._seen.setdefault(check.label, f"seen_{len(self._seen)}"))
        con.register("_conduit_keys", pa.table({"k": values, "i": pa.array(np.arange(len(values)), pa.int64())}))
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {seen} AS SELECT k FROM _conduit_keys LIMIT 0")
            duplicates = con.sql(
                f"SELECT i FROM (SELECT i, k, row_number() OVER (PARTITION BY k ORDER BY i) AS n FROM _conduit_keys "
                f"WHERE k IS NOT NULL) AS b WHERE n > 1 OR EXISTS (SELECT 1 FROM {seen} s WHERE s.k = b.k)"
            ).to_arrow_table().column("i").to_numpy()
            con.execute(f"INSERT INTO {seen} SELECT DISTINCT k FROM _conduit_keys AS b WHERE k IS NOT NULL "
                        f"AND NOT EXISTS (SELECT 1 FROM {seen} s WHERE s.k = b.k)")
        finally:
            con.unregister("_conduit_keys")
        mask = np.zeros(len(values), dtype=bool)
        mask[duplicates] = True
        return pa.array(mask, pa.bool_())

    def _custom(self, values: pa.Array, check: QualityCheckConfig) -> pa.BooleanArray:
        found = custom(check.check)
        assert found is not None  # validated with the configuration
        try:
            if found.vectorized:
                valid = found.function(values, **check.params)
                valid = valid if isinstance(valid, pa.Array | pa.ChunkedArray) else pa.array(valid, pa.bool_())
                return pc.invert(pc.fill_null(valid, True))
            # Per value (the seed contract): the function returns a bool, or (ok, reason).
            outcomes = [None if v is None else verdict(found.function(v, **check.params), check.check)
                        for v in values.to_pylist()]
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken validator fails the resource with its name
            msg = f"custom check {check.check!r} ({found.origin}) raised {type(exc).__name__}: {exc}"
            raise DataError(msg, column=check.column) from None
        reasons = [o[1] if o is not None and not o[0] else None for o in outcomes]
        if any(reasons):
            self.reasons[check.label] = reasons
        return pa.array([o is not None and not o[0] for o in outcomes], pa.bool_())

    def close(self) -> None:
        self._con.close()
