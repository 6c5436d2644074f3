"""The bookkeeping of one load: when to checkpoint, and the state each checkpoint commits."""

from __future__ import annotations

import time
from dataclasses import replace

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import CheckpointConfig, IncrementalConfig
from conduit_core.engine.incremental import IncrementalFilter
from conduit_core.engine.results import ResourceResult
from conduit_core.errors import DataError
from conduit_core.state.resume import COMPLETE, IN_PROGRESS, ResumeState
from conduit_core.state.store import now
from conduit_core.state.values import decode_schema, decode_value, encode_schema, encode_value


class LoadTracker:
    """Carries a load's state across checkpoints (and across the runs that resume it)."""

    def __init__(self, resource: str, run_id: str, checkpoint: CheckpointConfig,
                 incremental: IncrementalConfig | None, saved: ResumeState | None, *, resume: bool,
                 target: str | None = None, carry: ResumeState | None = None) -> None:
        self.resource = resource
        #: A state whose high-water mark this load keeps without filtering by it (``conduit dlq replay``).
        self.carry = carry
        self.run_id = run_id
        self.target = target
        self.checkpoint = checkpoint
        #: The in-progress state this load continues, if any.
        self.resumed = saved if resume and saved is not None and saved.in_progress else None
        self.schema: pa.Schema | None = None
        #: The types the source read with (before any conversion); a resumed source reads with them again.
        self.source_schema: pa.Schema | None = None
        if self.resumed is not None and self.resumed.schema:
            self.schema = decode_schema(self.resumed.schema)
        if self.resumed is not None and self.resumed.source_schema:
            self.source_schema = decode_schema(self.resumed.source_schema)
        self.filter: IncrementalFilter | None = None
        if incremental is not None:
            same_column = saved is not None and saved.incremental_column == incremental.column
            mark = decode_value(saved.mark) if same_column and saved and saved.mark else None
            pending = None
            if self.resumed is not None and self.resumed.pending_mark:
                pending = decode_value(self.resumed.pending_mark)
            self.filter = IncrementalFilter(incremental, mark, pending)
        self._rows_since = 0
        self._since = time.monotonic()

    @property
    def position(self) -> dict[str, object] | None:
        return self.resumed.position if self.resumed is not None else None

    @property
    def stage(self) -> str | None:
        return self.resumed.stage if self.resumed is not None else None

    def read(self, raw: Batch) -> None:
        """Note the types the source read with (at its first batch)."""
        if self.source_schema is None:
            self.source_schema = raw.schema

    def conform(self, batch: Batch) -> Batch:
        """``batch`` (after every stage) in the schema the load writes: the first batch's, or on a resume the
        one the load started with (a safe cast fails loudly rather than change a value)."""
        if self.schema is None:
            self.schema = batch.schema
        elif not batch.schema.equals(self.schema) and self.resumed is not None:
            try:
                batch = replace(batch, data=batch.data.cast(self.schema))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                msg = f"resumed data does not fit the schema the load started with: {exc}"
                hint = "the source changed since the checkpoint; `conduit state reset` and reload"
                raise DataError(msg, file=batch.source_file, row=batch.first_row, hint=hint) from None
        return batch

    def due(self, batch: Batch, rows: int) -> bool:
        """Whether to commit a checkpoint after ``batch`` (only where the source can resume)."""
        self._rows_since += rows
        if batch.position is None:
            return False
        every_rows, every_seconds = self.checkpoint.every_rows, self.checkpoint.every_seconds
        return bool((every_rows and self._rows_since >= every_rows)
                    or (every_seconds and time.monotonic() - self._since >= every_seconds))

    def state(self, result: ResourceResult, position: dict[str, object] | None, *, final: bool) -> ResumeState:
        """What to commit with the data: a checkpoint at ``position``, or the completed load."""
        self._rows_since, self._since = 0, time.monotonic()
        written, read, filtered, dlq = result.base_counts
        state = ResumeState(
            resource=self.resource, run_id=self.run_id, status=COMPLETE if final else IN_PROGRESS, target=self.target,
            position=None if final else dict(position or {}),
            rows_committed=written + result.rows_written,
            rows_read=read + result.rows_read,
            rows_filtered=filtered + result.rows_filtered,
            rows_dlq=dlq + result.rows_dlq,
            schema=encode_schema(self.schema) if self.schema is not None and not final else None,
            source_schema=encode_schema(self.source_schema) if self.source_schema is not None and not final
            else None,
            stage=self.stage,
            files_read=list(dict.fromkeys([*(self.resumed.files_read if self.resumed else []),
                                           *result.files_read])),
            updated_at=now(),
        )
        if self.filter is None and self.carry is not None:
            state.incremental_column, state.mark = self.carry.incremental_column, self.carry.mark
        if self.filter is not None:
            state.incremental_column = self.filter.column
            mark = self.filter.new_mark() if final else self.filter.mark
            state.mark = encode_value(mark) if mark is not None else None
            if not final and self.filter.largest is not None:
                state.pending_mark = encode_value(self.filter.largest)
        return state
