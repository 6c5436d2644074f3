"""The incremental step: rows at or below the high-water mark are filtered (see engine.incremental)."""

from __future__ import annotations

import numpy as np

from conduit_core.engine.incremental import IncrementalFilter
from conduit_core.stages.stage import Rows, StageOutput


class IncrementalStage:
    name = "incremental"

    def __init__(self, incremental: IncrementalFilter) -> None:
        self.incremental = incremental

    def apply(self, rows: Rows) -> StageOutput:
        kept, dropped, mask = self.incremental.apply(rows.as_batch())
        if mask is None:
            return StageOutput(rows)
        keep = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        return StageOutput(rows.keep(keep, kept.data), filtered=dropped)
