"""Stream one resource: source batches -> destination, counting every row."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import CheckpointConfig, QualityGate
from conduit_core.connectors.base import BaseDestination, WriteMode, WriteTarget
from conduit_core.engine import cancel
from conduit_core.engine.names import NAMES_HINT, ColumnNames, kind_of, name_problems
from conduit_core.engine.prefetch import prefetch
from conduit_core.engine.results import ResourceResult, Status
from conduit_core.engine.tracker import LoadTracker
from conduit_core.errors import DataError, FatalError, InvariantError
from conduit_core.observe.progress import ProgressSink
from conduit_core.quality.dlq import DeadLetterQueue
from conduit_core.stages.coerce import CoerceStage
from conduit_core.stages.evolve import EvolveStage
from conduit_core.stages.quality import QualityStage
from conduit_core.stages.stage import Pipeline, StageOutput
from conduit_core.state.resume import ResumeState


def check_merge_key(schema: pa.Schema, target: WriteTarget) -> None:
    """Every primary_key column must be in the data."""
    for key in target.primary_key:
        if key not in schema.names:
            msg = f"primary_key column {key!r} is not in the data; columns: {schema.names}"
            raise DataError(msg, hint="fix primary_key on the resource")


def reject_null_keys(batch: Batch, target: WriteTarget) -> None:
    """Merge matches rows by key; a NULL key matches nothing, so such rows fail the load."""
    for key in target.primary_key:
        if nulls := batch.data.column(key).null_count:
            msg = f"{nulls} row(s) have a NULL primary key, which merge cannot match"
            raise DataError(msg, column=key, row=batch.first_row,
                            hint="filter or fix those rows, or load with mode: append")


def _check_batch(batch: Batch, first: Batch | None, target: WriteTarget) -> None:
    """What every batch must satisfy before it is written."""
    if first is None:
        if target.mode is WriteMode.MERGE:
            check_merge_key(batch.schema, target)
    else:
        _check_schema(batch, first)
    if target.mode is WriteMode.MERGE:
        reject_null_keys(batch, target)


def _check_schema(batch: Batch, expected: Batch) -> None:
    if not batch.schema.equals(expected.schema):
        where = batch.source_file or "the source"
        msg = (f"the schema changed mid-stream in {where}: {batch.schema.names} "
               f"({', '.join(str(t) for t in batch.schema.types)}) after {expected.schema.names}")
        raise DataError(msg, file=batch.source_file, hint="declare column types on the source")


def stream_resource(source: Iterator[Batch], destination: BaseDestination, target: WriteTarget,
                    result: ResourceResult, progress: ProgressSink, tracker: LoadTracker | None = None,
                    on_checkpoint: Callable[[ResumeState], None] = lambda _: None,
                    pipeline: Pipeline | None = None, dlq: DeadLetterQueue | None = None,
                    gate: QualityGate | None = None) -> None:
    """Move every row the ``source`` stream yields, through the ``pipeline``'s stages, into ``destination``;
    fill ``result``.

    Destinations that support checkpoints commit the rows written so far with
    the resume state whenever ``tracker`` says one is due; the last commit
    publishes the load. Row accounting is checked before every commit, and any
    exception aborts the uncommitted part, so nothing partial is published.
    """
    if tracker is None:  # one unit of work: no checkpoints, no incremental mark
        tracker = LoadTracker(target.resource, "", CheckpointConfig(every_seconds=None), None, None, resume=False)
    stages = pipeline or Pipeline([])
    load = _Load(destination, target, result, tracker, on_checkpoint, stages, dlq, gate)

    def staged(read: Iterator[Batch]) -> Iterator[tuple[Batch | None, StageOutput]]:
        for raw in read:
            tracker.read(raw)
            renamed = load.names.apply(raw)
            yield renamed, stages.run(renamed)
        for out in stages.finish():  # rows a stage held until the end (e.g. dedupe keep: last)
            yield None, out

    # Three threads: the source reads ahead, the stages work on what it read, and this thread writes. A
    # few batches of read-ahead on each side keep both cores busy: at a depth of 2, CSV -> Parquet ran
    # 1.5x slower while each side waited for the other. Without stages, one read-ahead thread does.
    if stages.stages:
        batches: Iterator[tuple[Batch | None, StageOutput]] = prefetch(staged(prefetch(source, depth=4)), depth=4)
    else:
        batches = prefetch(staged(source), depth=8)
    try:
        for raw, out in batches:
            load.write(raw, out)
            if raw is not None:
                progress.advance(target.resource, raw.num_rows)
        load.finish()
    except BaseException:
        load.abort()
        raise
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        report(stages, result)  # what the stages found, also when a stage stopped the load


class _Load:
    """One attempt at writing a resource: begin, batches, checkpoints, the final commit."""

    def __init__(self, destination: BaseDestination, target: WriteTarget, result: ResourceResult,
                 tracker: LoadTracker, on_checkpoint: Callable[[ResumeState], None], pipeline: Pipeline,
                 dlq: DeadLetterQueue | None, gate: QualityGate | None) -> None:
        self.destination, self.target, self.result, self.tracker = destination, target, result, tracker
        self.pipeline, self.dlq, self.gate = pipeline, dlq, gate
        self.on_checkpoint = on_checkpoint
        self.checkpoints = destination.capabilities.checkpoints
        self.names = ColumnNames(target.resource, case_insensitive=destination.capabilities.case_insensitive_names)
        self.begun = False  # once set, the destination has begun (and must be aborted on failure)
        self.first: Batch | None = None
        self.committed = result.rows_written  # rows of this run that a checkpoint made durable

    def _begin(self, schema: pa.Schema) -> None:
        problems = name_problems(schema.names, self.target.table, self.destination.capabilities,
                                 kind_of(type(self.destination)))
        if problems:
            raise FatalError("; ".join(problems), hint=NAMES_HINT)
        self.begun = True  # set first: abort() must also clean up after a begin() that failed half-way
        self.destination.begin(self.target, schema)

    def write(self, read: Batch | None, out: StageOutput) -> None:
        """Account for one batch as read (``read``) and write what the stages made of it (``out``); or, with
        ``read`` None, write rows a stage held back (read and counted with their batches earlier)."""
        cancel.check()  # between batches: the safe point to stop at
        result = self.result
        result.renamed_columns = [r.to_dict() for r in self.names.renames]
        raw = read if read is not None else out.rows.source
        if raw.source_file is not None and raw.source_file not in result.files_read:
            result.files_read.append(raw.source_file)
        if read is not None:
            result.rows_read += raw.num_rows
        report(self.pipeline, result)
        result.rows_filtered += out.filtered
        if out.rejected:
            if self.dlq is None:
                msg = f"{len(out.rejected)} row(s) were rejected, and this load has no dead-letter queue"
                raise InvariantError(msg)
            self.dlq.write(raw.data, [o for o, _ in out.rejected], [r for _, r in out.rejected],
                           source_file=raw.source_file, first_row=raw.first_row,
                           locations=raw.extras.get("locations"))
            result.rows_dlq += len(out.rejected)
        batch = self.tracker.conform(out.rows.as_batch())
        _check_batch(batch, self.first, self.target)
        self.first = self.first or batch
        if not self.begun:
            self._begin(self.tracker.schema or batch.schema)
        if batch.num_rows:
            result.rows_written += self.destination.write_batch(batch)
            result.batches += 1
        if self.checkpoints and read is not None and not self.pipeline.holds and self.tracker.due(raw, raw.num_rows):
            _check_balance(result)
            state = self._with_dlq(self.tracker.state(result, dict(raw.position or {}), final=False))
            self.destination.checkpoint(state)
            self.committed = result.rows_written
            result.checkpoints += 1
            self.on_checkpoint(state)

    def finish(self) -> None:
        if not self.begun and self.tracker.resumed is not None and self.tracker.schema is not None:
            # Killed after its last batch was committed: there is nothing left to read, but the
            # load must still be published (a staging table swapped in, part files assembled).
            self._begin(self.tracker.schema)
        _check_balance(self.result)
        if not self.begun:
            return
        state = self._with_dlq(self.tracker.state(self.result, None, final=True))
        if self.checkpoints:
            self.destination.checkpoint(state, final=True)
        else:
            self.destination.commit()
        self.on_checkpoint(state)

    def _with_dlq(self, state: ResumeState) -> ResumeState:
        """Before a commit: the quality gate holds, and the dead-letter rows so far are durable and counted
        in the state (a resume cuts the file back to this length)."""
        result = self.result
        if self.gate is not None and result.rows_read:
            ratio = result.rows_dlq / result.rows_read
            if ratio > self.gate.max_dlq_ratio:
                msg = (f"quality gate: {result.rows_dlq} of {result.rows_read} rows ({ratio:.2%}) went to the "
                       f"dead-letter queue, above max_dlq_ratio {self.gate.max_dlq_ratio:.2%}")
                raise DataError(msg, hint=f"inspect them with `conduit dlq show {result.resource}`")
        if self.dlq is not None and self.dlq.used:
            state.dlq_file, state.dlq_bytes = str(self.dlq.path), self.dlq.sync()
        return state

    def abort(self) -> None:
        if self.begun:
            self.destination.abort()
        if self.destination.capabilities.transactional:
            self.result.rows_written = self.committed


def report(pipeline: Pipeline, result: ResourceResult) -> None:
    """Copy what the stages found into the result: per-step counts, quality-check failures, coercion rejects,
    schema drift and the changes applied."""
    result.steps = pipeline.steps()
    for stage, stats in zip(pipeline.stages, pipeline.stats, strict=True):
        if isinstance(stage, QualityStage):
            result.quality.update({label: dict(counts) for label, counts in stage.failed.items()})
        elif isinstance(stage, CoerceStage) and stats.rows_dlq:
            result.quality["coercion"] = {"check": "coercion", "column": None, "action": "dlq",
                                          "failed": stats.rows_dlq}
        elif isinstance(stage, EvolveStage):
            result.schema_drift, result.schema_changes = stage.drift, stage.changes


def _check_balance(result: ResourceResult) -> None:
    if not result.balanced:
        msg = (f"row accounting does not balance for {result.resource}: read {result.rows_read} != "
               f"written {result.rows_written} + dlq {result.rows_dlq} + filtered {result.rows_filtered}")
        raise InvariantError(msg)


__all__ = ["Status", "stream_resource"]
