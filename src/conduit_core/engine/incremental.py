"""Incremental loading: keep rows above the stored high-water mark, and find the new mark.

The boundary is strict: a row is loaded when ``column > mark`` (or
``column > mark - lookback``). Comparisons are typed: the mark is cast to the
column's Arrow type, so a CSV column typed int64 compares 10 > 9, and a
timestamp compares as a timestamp. Rows whose column is NULL pass only while
there is no mark yet; after that they are counted as filtered.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.config.models import IncrementalConfig
from conduit_core.errors import DataError
from conduit_core.state.values import cast_value, subtract


class IncrementalFilter:
    """Filters batches (vectorised) and tracks the largest value that passed."""

    def __init__(self, config: IncrementalConfig, mark: pa.Scalar | None, pending: pa.Scalar | None = None) -> None:
        self.config = config
        self.mark = mark
        self.largest = pending
        self._boundary: pa.Scalar | None = None
        self._typed = False

    @property
    def column(self) -> str:
        return self.config.column

    def pushdown(self) -> pa.Scalar | None:
        """The typed lower bound a database source may push down (None before a typed mark exists)."""
        if self.mark is None:
            return None
        return subtract(self.mark, self.config.lookback) if self.config.lookback is not None else self.mark

    def _bound(self, data_type: pa.DataType) -> pa.Scalar | None:
        if not self._typed:
            start = self.mark
            if start is None and self.config.initial_value is not None:
                start = pa.scalar(self.config.initial_value)
            if start is not None:
                start = cast_value(start, data_type, f"the high-water mark of {self.column!r}")
                self.mark = start if self.mark is not None else None
                if self.config.lookback is not None:
                    start = subtract(start, self.config.lookback)
            if self.largest is not None:
                self.largest = cast_value(self.largest, data_type, "the pending high-water mark")
            self._boundary, self._typed = start, True
        return self._boundary

    def apply(self, batch: Batch) -> tuple[Batch, int, pa.BooleanArray | None]:
        """The rows of ``batch`` above the boundary, how many were dropped, and the mask kept (None: all)."""
        if self.column not in batch.schema.names:
            msg = f"incremental column {self.column!r} is not in the data; columns: {batch.schema.names}"
            raise DataError(msg, file=batch.source_file, hint="fix incremental.column on the resource")
        column = batch.data.column(self.column)
        bound = self._bound(column.type)
        kept, kept_mask = batch, None
        if bound is not None and batch.num_rows:
            mask = pc.fill_null(pc.greater(column, bound), False)
            if not pc.all(mask).as_py():
                kept_mask = mask
                kept = Batch(batch.data.filter(mask), position=batch.position, source_file=batch.source_file,
                             first_row=batch.first_row, extras=batch.extras)
        if kept.num_rows:
            top = pc.max(kept.data.column(self.column))
            if top.is_valid and (self.largest is None or pc.greater(top, self.largest).as_py()):
                self.largest = top
        return kept, batch.num_rows - kept.num_rows, kept_mask

    def new_mark(self) -> pa.Scalar | None:
        """The mark once this load has committed: the larger of the old mark and what was read."""
        if self.largest is None:
            return self.mark
        if self.mark is None or pc.greater(self.largest, self.mark).as_py():
            return self.largest
        return self.mark
