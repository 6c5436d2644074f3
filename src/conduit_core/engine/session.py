"""One attempt at loading one resource, set up once: connectors, saved state, tracker, read request, and the
source's stream.

The stream is opened once. Preflight takes its first batch (so its checks see exactly what the load will
read), and the load then reads that same batch and the rest: a source that can be read only once (an API,
a queue) is never read twice, and a built-in source's first batch is not read again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace

from conduit_core.batch import Batch
from conduit_core.config.models import ConnectorEntry, IngestConfig, ResourceConfig
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest, WriteTarget
from conduit_core.engine.plan import ResourcePlan
from conduit_core.engine.results import ResourceResult
from conduit_core.engine.tracker import LoadTracker
from conduit_core.errors import StateError
from conduit_core.stages.lookups import Lookups
from conduit_core.stages.transforms import StepContext
from conduit_core.state.resume import ResumeState, check_owner
from conduit_core.state.store import StateStore

log = logging.getLogger("conduit")


def source_of(entry: ConnectorEntry) -> BaseSource:
    from conduit_core.connectors import registry

    return registry.source_class(entry.type)(entry.options)


def destination_of(entry: ConnectorEntry) -> BaseDestination:
    from conduit_core.connectors import registry

    return registry.destination_class(entry.type)(entry.options)


def build_source(config: IngestConfig, resource: ResourceConfig) -> BaseSource:
    return source_of(config.source(resource.source))


def build_destination(config: IngestConfig, resource: ResourceConfig) -> BaseDestination:
    return destination_of(config.destination(resource.destination))


def saved_state(destination: BaseDestination, target: WriteTarget, store: StateStore) -> ResumeState | None:
    """The resource's saved state: the destination's own copy (committed with the data) when it keeps one.
    A state that belongs to another resource or target is refused (:class:`StateError`), never used."""
    state = destination.read_state(target) if destination.capabilities.checkpoints else store.get_state(
        target.resource)
    if state is not None:
        check_owner(state, target.resource, destination.target_id(target))
    return state


def checkpoint_refusal(state: ResumeState) -> str:
    where = ", ".join(f"{k} {v}" for k, v in (state.position or {}).items() if k in ("file", "row", "column"))
    return (f"resource {state.resource!r} has a checkpoint from run {state.run_id} ({state.rows_committed:,} rows "
            f"committed{f', at {where}' if where else ''}, {state.updated_at})")


class LoadSession:
    """Connectors and plan of one attempt; :meth:`close` releases them."""

    def __init__(self, spec: ResourcePlan) -> None:
        self.spec = spec
        self.resource, self.run_id = spec.resource, spec.run_id
        self.full_refresh = spec.full_refresh
        self.batch_size = spec.batch_size
        self.source = source_of(spec.source)
        self.destination = destination_of(spec.destination)
        self.target = spec.target
        self.saved: ResumeState | None = None
        self.tracker: LoadTracker | None = None
        self.request = ReadRequest(batch_size=self.batch_size, query=spec.resource.query,
                                   checkpoint_column=spec.resource.checkpoint_column)
        self._stream: Iterator[Batch] | None = None
        self._first: list[Batch] = []
        #: The lookup sources of the resource's join steps, read once for preflight and the load.
        self.lookups = Lookups(spec.lookups, self.batch_size)
        #: Why the saved state could not be read up front (preflight reports it; the attempt tries again).
        self.state_error: str | None = None

    @property
    def target_id(self) -> str:
        return self.destination.target_id(self.target)

    def read_state(self, store: StateStore) -> ResumeState | None:
        """The saved state (checked to be this load's), mirrored into the state store."""
        self.saved = saved_state(self.destination, self.target, store)
        if self.saved is not None and self.destination.capabilities.checkpoints:
            store.put_state(self.saved)  # the destination's copy is the truth; a crash may have left the mirror behind
        return self.saved

    def prepare(self, result: ResourceResult, *, resume: bool) -> None:
        """The tracker and the read request: from the start, or after the checkpoint this load continues."""
        # A full refresh ignores every earlier state (checkpoints and marks) except this run's own checkpoints.
        saved = self.saved if not self.full_refresh or (self.saved and self.saved.run_id == self.run_id) else None
        continues = saved is not None and saved.in_progress and (resume or saved.run_id == self.run_id)
        if saved is not None and saved.in_progress and not continues:
            raise StateError(checkpoint_refusal(saved), hint="run with --resume, or `conduit state reset RESOURCE`")
        resource = self.resource
        self.tracker = tracker = LoadTracker(resource.name, self.run_id, self.spec.checkpoint,
                                             resource.incremental, saved, resume=continues, target=self.target_id)
        if tracker.resumed is not None:
            _count_resumed(tracker.resumed, self.run_id, result)
            self.target = replace(self.target, resume=tracker.resumed)
        after = tracker.filter.pushdown() if tracker.filter is not None else None
        self.request = replace(self.request, resume_position=tracker.position, schema=tracker.source_schema,
                               after=(tracker.filter.column, after) if tracker.filter and after is not None else None)

    def step_context(self) -> StepContext:
        """What the transform steps need: the lookups, and where a step keeps what a resume needs (cut back
        to the checkpoint this load continues)."""
        resumed = self.tracker.resumed if self.tracker is not None else None
        return StepContext(self.lookups, self.spec.state_dir / "work" / self.resource.name,
                           resumed.rows_read if resumed is not None else None, self.batch_size)

    # -- the source, read once -------------------------------------------------------
    def first_batch(self) -> Batch | None:
        """The first batch the load will read (None: the source yields nothing)."""
        if self._stream is None:
            self._stream = self.source.read_batches(self.request)
            batch = next(self._stream, None)
            self._first = [batch] if batch is not None else []
        return self._first[0] if self._first else None

    def batches(self) -> Iterator[Batch]:
        """Every batch of the load: the one preflight took first, then the rest of the same stream."""
        if self._stream is None:
            self._stream = self.source.read_batches(self.request)
        first, self._first = self._first, []
        yield from first
        yield from self._stream

    def release(self) -> None:
        """Give back what waits while other resources load: the stream preflight opened, for a source that can
        be read again (the load reopens it), and the destination's connection (the load opens another; an
        embedded database file is then free for the resources before it)."""
        if self._stream is not None and self.source.rereadable:
            _close_stream(self._stream)
            self._stream, self._first = None, []
        with contextlib.suppress(Exception):  # a connection that cannot be closed cleanly is gone anyway
            self.destination.release()

    def close(self) -> None:
        if self._stream is not None:
            _close_stream(self._stream)
            self._stream = None
        for connector in (self.source, self.destination, self.lookups):
            with contextlib.suppress(Exception):  # closing must not mask the real outcome
                connector.close()


def _close_stream(stream: Iterator[Batch]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


def count_own(state: ResumeState, result: ResourceResult) -> None:
    """Count the rows an earlier attempt of this run committed (the state's totals minus the base)."""
    written, read, filtered, dlq = result.base_counts
    result.rows_written = state.rows_committed - written
    result.rows_read = state.rows_read - read
    result.rows_filtered = state.rows_filtered - filtered
    result.rows_dlq = state.rows_dlq - dlq
    result.files_read = list(state.files_read)


def _count_resumed(resumed: ResumeState, run_id: str, result: ResourceResult) -> None:
    """Count what the checkpoint already holds: another run's rows are its base; this run's own
    (committed by an earlier attempt) are part of this run's counts."""
    if resumed.run_id != run_id:
        result.resumed_from = resumed.run_id
        result.rows_before_resume = resumed.rows_committed
        result.base_counts = (resumed.rows_committed, resumed.rows_read, resumed.rows_filtered, resumed.rows_dlq)
        return
    count_own(resumed, result)
    log.warning("[%s] attempt %d resumes after the %d rows its run has committed", result.resource,
                result.retries + 1, result.rows_written)
