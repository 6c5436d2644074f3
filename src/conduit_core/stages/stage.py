"""The stage protocol: every step between read and write takes the rows so far and returns the rows to pass
on, the rows it rejects (keyed by the row of the batch as read, so the dead-letter queue can name the source
row), and how many it filtered. Stages never touch the load's counters: :class:`Pipeline` keeps each stage's
statistics, and the load owns the row accounting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from conduit_core.batch import Batch

Reason = dict[str, Any]


@dataclass(frozen=True)
class Rows:
    """A batch on its way through the stages."""

    data: pa.RecordBatch
    #: For each row of ``data``, its index in ``source.data``.
    origin: np.ndarray
    #: The batch as the source read it (file, first row, position).
    source: Batch

    @classmethod
    def read(cls, batch: Batch) -> Rows:
        return cls(batch.data, np.arange(batch.num_rows, dtype=np.int64), batch)

    @property
    def num_rows(self) -> int:
        return int(self.data.num_rows)

    def row(self, index: int) -> int:
        """The source row number (1-based, in its file) of row ``index`` of ``data``."""
        return int(self.locations()[1][index].as_py())

    def locations(self) -> tuple[pa.Array, pa.Array]:
        """Each row's file and row number (1-based). Rows a step held back and released carry their own, in
        the ``locations`` of their batch; other rows are a run of one file."""
        origin = pa.array(self.origin, pa.int64())
        held = self.source.extras.get("locations")
        if held is not None:
            return held[0].take(origin), held[1].take(origin)
        return (pa.repeat(pa.scalar(self.source.source_file, pa.string()), self.num_rows),
                pa.array(self.source.first_row + self.origin, pa.int64()))

    def keep(self, mask: np.ndarray, data: pa.RecordBatch | None = None) -> Rows:
        """The rows where ``mask`` is true (``data``: those rows already computed by the stage)."""
        kept = data if data is not None else self.data.filter(pa.array(mask))
        return Rows(kept, self.origin[mask], self.source)

    def replace(self, data: pa.RecordBatch) -> Rows:
        """The same rows, with new columns or types."""
        return Rows(data, self.origin, self.source)

    def as_batch(self) -> Batch:
        """The rows as a :class:`Batch` of the source's file (for code that works on batches)."""
        return Batch(self.data, position=self.source.position, source_file=self.source.source_file,
                     first_row=self.source.first_row, extras=self.source.extras)


@dataclass
class StageOutput:
    rows: Rows
    #: (origin, reason) of each row the stage sent to the dead-letter queue.
    rejected: list[tuple[int, Reason]] = field(default_factory=list)
    #: Rows the stage left out on purpose (an incremental mark, a filter, a duplicate).
    filtered: int = 0
    #: Rows a lookup found no match for (kept or not, depending on the step).
    unmatched: int = 0


def require_columns(columns: Sequence[str], data: pa.RecordBatch, step: str,
                    hint: str = "fix the step in `transforms:` (columns are named as after earlier steps)") -> None:
    """A config error naming the first column that is not in the data, with a did-you-mean."""
    from conduit_core.config.issues import suggest
    from conduit_core.errors import ConfigError

    names = data.schema.names
    for column in columns:
        if column not in names:
            msg = f"transform {step}: column {column!r} is not in the data{suggest(column, names)}; columns: {names}"
            raise ConfigError(msg, hint=hint)


class Stage(Protocol):
    #: How the manifest names the stage (``coerce``, ``incremental``, ``filter #2``, ``quality`` ...).
    name: str

    def apply(self, rows: Rows) -> StageOutput: ...


@dataclass
class StageStats:
    name: str
    rows_in: int = 0
    rows_out: int = 0
    rows_filtered: int = 0
    rows_dlq: int = 0
    rows_unmatched: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "rows_filtered": self.rows_filtered, "rows_dlq": self.rows_dlq,
                "rows_unmatched": self.rows_unmatched, "duration_ms": round(self.seconds * 1000, 1)}


class Pipeline:
    """The stages of one load, run in order over every batch."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)
        self.stats = [StageStats(stage.name) for stage in self.stages]

    @property
    def holds(self) -> bool:
        """Whether a stage holds rows back until the source is read to the end (:meth:`finish` releases them):
        such a load writes nothing before then, so it takes no checkpoint."""
        return any(getattr(stage, "holds", False) for stage in self.stages)

    def run(self, batch: Batch) -> StageOutput:
        """``batch`` (as read) through every stage: the rows left, and everything the stages took out."""
        return self._through(StageOutput(Rows.read(batch)), 0)

    def finish(self) -> Iterator[StageOutput]:
        """Once the source is read to the end: the rows stages held back, through the stages after them."""
        for index, stage in enumerate(self.stages):
            release = getattr(stage, "finish", None)
            if release is None:
                continue
            stats = self.stats[index]
            for out in release():
                stats.rows_out += out.rows.num_rows
                stats.rows_filtered += out.filtered
                yield self._through(out, index + 1)

    def _through(self, total: StageOutput, start: int) -> StageOutput:
        for stage, stats in zip(self.stages[start:], self.stats[start:], strict=True):
            started = time.perf_counter()
            out = stage.apply(total.rows)
            stats.seconds += time.perf_counter() - started
            stats.rows_in += total.rows.num_rows
            stats.rows_out += out.rows.num_rows
            stats.rows_filtered += out.filtered
            stats.rows_dlq += len(out.rejected)
            stats.rows_unmatched += out.unmatched
            total = StageOutput(out.rows, [*total.rejected, *out.rejected], total.filtered + out.filtered,
                                total.unmatched + out.unmatched)
        return total

    def steps(self) -> list[dict[str, Any]]:
        """Each stage's statistics (and the rows it names, such as a dedupe's first duplicates), for the
        manifest."""
        steps = []
        for stage, stats in zip(self.stages, self.stats, strict=True):
            step = stats.to_dict()
            if examples := getattr(stage, "examples", None):
                step["examples"] = list(examples)
            steps.append(step)
        return steps
