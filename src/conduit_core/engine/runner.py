"""Run a plan: each resource in turn, with history, progress and clean failure."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors import registry
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest, WriteMode, WriteTarget
from conduit_core.engine.preflight import preflight
from conduit_core.engine.quality_stage import QualityStage
from conduit_core.engine.results import ResourceResult, RunResult, Status
from conduit_core.engine.retry import retrying
from conduit_core.engine.schema_stage import SchemaStage
from conduit_core.engine.stream import stream_resource
from conduit_core.engine.tracker import LoadTracker
from conduit_core.errors import ConduitError, ConfigError, FatalError, StateError, environment_problem
from conduit_core.errors import ConnectionError as RetriableError
from conduit_core.observe.progress import NoProgress, ProgressSink
from conduit_core.observe.redact import redact
from conduit_core.quality.dlq import DeadLetterQueue, cut_back
from conduit_core.schema.model import TableSchema
from conduit_core.state import open_store
from conduit_core.state.resume import ResumeState, check_owner
from conduit_core.state.store import StateStore

log = logging.getLogger("conduit")


@dataclass(frozen=True)
class RunOptions:
    resources: Sequence[str] = ()
    batch_size: int | None = None
    dry_run: bool = False
    #: Continue resources that have a checkpoint (otherwise such a resource stops the run).
    resume: bool = False
    #: Ignore and reset checkpoints and high-water marks, and replace the targets (mode full_refresh).
    full_refresh: bool = False
    #: Run without checking every resource first (see :mod:`conduit_core.engine.preflight`).
    skip_preflight: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def select_resources(config: IngestConfig, names: Sequence[str]) -> list[ResourceConfig]:
    """The resources named (all when none), in config order; unknown names are a config error."""
    known = [r.name for r in config.resources]
    unknown = [n for n in names if n not in known]
    if unknown:
        from conduit_core.config.issues import suggest

        hints = "; ".join(f"{n!r}{suggest(n, known)}" for n in unknown)
        msg = f"unknown resource(s): {hints}; defined resources: {', '.join(known)}"
        raise ConfigError(msg)
    return [r for r in config.resources if not names or r.name in names]


def build_source(config: IngestConfig, resource: ResourceConfig) -> BaseSource:
    entry = config.source(resource.source)
    return registry.source_class(entry.type)(entry.options)


def build_destination(config: IngestConfig, resource: ResourceConfig) -> BaseDestination:
    entry = config.destination(resource.destination)
    return registry.destination_class(entry.type)(entry.options)


def _check_connections(config: IngestConfig, resource: ResourceConfig) -> None:
    for connector in (build_source(config, resource), build_destination(config, resource)):
        try:
            connector.test_connection()
        finally:
            connector.close()


def write_target(resource: ResourceConfig, options: RunOptions) -> WriteTarget:
    mode = WriteMode.FULL_REFRESH if options.full_refresh else resource.mode
    return WriteTarget(resource=resource.name, mode=mode, table=resource.target_table, path=resource.path,
                       primary_key=resource.primary_key)


def saved_state(destination: BaseDestination, target: WriteTarget, store: StateStore) -> ResumeState | None:
    """The resource's saved state: the destination's own copy (committed with the data) when it keeps one.
    A state that belongs to another resource or target is refused (:class:`StateError`), never used."""
    state = destination.read_state(target) if destination.capabilities.checkpoints else store.get_state(
        target.resource)
    if state is not None:
        check_owner(state, target.resource, destination.target_id(target))
    return state


def checkpoint_refusal(state: ResumeState) -> str:
    where = ", ".join(f"{k} {v}" for k, v in (state.position or {}).items() if k != "after")
    return (f"resource {state.resource!r} has a checkpoint from run {state.run_id} ({state.rows_committed:,} rows "
            f"committed{f', at {where}' if where else ''}, {state.updated_at})")


def _count_own(state: ResumeState, result: ResourceResult) -> None:
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
    _count_own(resumed, result)
    log.warning("[%s] attempt %d resumes after the %d rows its run has committed", result.resource,
                result.retries + 1, result.rows_written)


def _attempt(config: IngestConfig, resource: ResourceConfig, options: RunOptions, progress: ProgressSink,
             result: ResourceResult, run_id: str, store: StateStore) -> None:
    """One try of the unit of work with fresh connectors; it continues from the last checkpoint, if any."""
    result.rows_read = result.rows_written = result.rows_dlq = result.rows_filtered = result.batches = 0
    result.checkpoints = 0
    result.files_read = []
    source: BaseSource | None = None
    destination: BaseDestination | None = None
    try:
        source = build_source(config, resource)
        destination = build_destination(config, resource)
        target = write_target(resource, options)
        saved = saved_state(destination, target, store)
        if saved is not None and saved.run_id == run_id and not saved.in_progress:
            # An earlier attempt's final commit landed although its outcome looked unknown.
            _count_own(saved, result)
            log.warning("[%s] the final commit of attempt %d had landed; nothing left to do", resource.name,
                        result.retries)
            return
        resume = saved is not None and saved.in_progress and (options.resume or saved.run_id == run_id)
        if saved is not None and saved.in_progress and not resume:
            raise StateError(checkpoint_refusal(saved), hint="run with --resume, or `conduit state reset RESOURCE`")
        tracker = LoadTracker(resource.name, run_id, config.checkpoint(resource), resource.incremental,
                              None if options.full_refresh else saved, resume=resume,
                              target=destination.target_id(target))
        if tracker.resumed is not None:
            _count_resumed(tracker.resumed, run_id, result)
            target = replace(target, resume=tracker.resumed)
        after = tracker.filter.pushdown() if tracker.filter is not None else None
        batch_size = options.batch_size or resource.batch_size or config.settings.batch_size
        request = ReadRequest(batch_size=batch_size, query=resource.query, resume_position=tracker.position,
                              schema=tracker.source_schema,
                              checkpoint_column=resource.checkpoint_column,
                              after=(tracker.filter.column, after) if tracker.filter and after is not None else None)
        # An estimate may cost a query and a connection: only worth it when someone watches.
        total = None if isinstance(progress, NoProgress) else source.estimate_total_records()
        progress.start(resource.name, total)
        try:
            _load(config, resource, (source, destination, target), request, result, progress, tracker, store)
        except RetriableError as exc:
            if not destination.capabilities.transactional:
                msg = f"{exc.message} (not retried: the destination is not transactional, a redo could double rows)"
                raise FatalError(msg) from exc
            raise
    finally:
        for connector in (source, destination):
            if connector is not None:
                with contextlib.suppress(Exception):  # closing must not mask the real outcome
                    connector.close()


def _load(config: IngestConfig, resource: ResourceConfig,
          ends: tuple[BaseSource, BaseDestination, WriteTarget], request: ReadRequest, result: ResourceResult,
          progress: ProgressSink, tracker: LoadTracker, store: StateStore) -> None:
    """Stream the resource with its schema and quality stages; record the schema it wrote."""
    source, destination, target = ends
    run_id = tracker.run_id
    # A resumed load goes on appending to the dead-letter file it started, cut back to its checkpoint.
    resumed_dlq = tracker.resumed.dlq_file if tracker.resumed is not None else None
    if tracker.resumed is not None:
        cut_back(resumed_dlq, tracker.resumed.dlq_bytes)
    dlq = DeadLetterQueue(config.settings.state_dir, resource.name, run_id, Path(resumed_dlq) if resumed_dlq else None)
    quality = QualityStage(resource, result, dlq)
    try:
        stream_resource(source, destination, target, request, result, progress, tracker, store.put_state,
                        SchemaStage(resource, destination, target, result), quality)
    finally:
        quality.close()
        if quality.dlq.used:
            result.dlq_file = str(quality.dlq.path)
    if tracker.schema is not None:
        result.schema_version = store.record_schema(resource.name, TableSchema.from_arrow(tracker.schema), run_id)


def _run_resource(config: IngestConfig, resource: ResourceConfig, options: RunOptions, progress: ProgressSink,
                  run_id: str, store: StateStore, interrupted: list[ResourceResult] | None = None) -> ResourceResult:
    result = ResourceResult(resource=resource.name, source=resource.source, destination=resource.destination,
                            mode=str(resource.mode), started_at=_now())
    started = time.perf_counter()
    try:
        if options.dry_run:
            _check_connections(config, resource)
            result.status = Status.SKIPPED
            return result
        for attempt in retrying(resource.retries, resource.name):
            with attempt:
                result.retries = attempt.retry_state.attempt_number - 1
                _attempt(config, resource, options, progress, result, run_id, store)
        result.status = Status.PARTIAL_SUCCESS if result.rows_dlq else Status.SUCCESS
    except ConduitError as exc:
        known = environment_problem(exc.__cause__) or exc
        result.status = Status.FAILED
        result.error = redact(known.message + (f" (hint: {known.hint})" if known.hint else ""))
        result.error_type = type(known).__name__
    except Exception as exc:  # noqa: BLE001 - an unexpected bug fails this resource, not the whole run
        result.status = Status.FAILED
        problem = environment_problem(exc)
        if problem is not None:
            result.error = redact(f"{problem.message} (hint: {problem.hint})")
            result.error_type = type(problem).__name__
        else:
            result.error = redact(f"unexpected {type(exc).__name__}: {exc}")
            result.error_type = type(exc).__name__
        result.exception = exc
    except BaseException as exc:  # Ctrl-C / SystemExit: record the resource as failed, then stop
        result.status = Status.FAILED
        result.error = f"interrupted ({type(exc).__name__})"
        result.error_type = type(exc).__name__
        if interrupted is not None:
            interrupted.append(result)
        raise
    finally:
        result.finished_at = _now()
        result.duration_s = round(time.perf_counter() - started, 3)
        progress.finish(resource.name, str(result.status))
    return result


def prepare_state(config: IngestConfig, selected: Sequence[ResourceConfig], options: RunOptions,
                  store: StateStore) -> None:
    """Before anything runs: refuse if a checkpoint waits and ``--resume`` was not given;
    with ``--full-refresh``, discard checkpoints and marks."""
    refusals = []
    for resource in selected:
        destination = build_destination(config, resource)
        try:
            target = write_target(resource, options)
            try:
                saved = saved_state(destination, target, store)
            except StateError as exc:
                if not options.full_refresh:
                    refusals.append(f"{exc.message} ({exc.hint})")
                    continue
                # Reloading from scratch: whatever state is there goes, whoever it belonged to.
                saved = destination.read_state(target) if destination.capabilities.checkpoints else None
            except ConduitError:
                continue  # unreachable now: the resource's own attempt reports it (and retries)
            if saved is None:
                continue
            if destination.capabilities.checkpoints:
                store.put_state(saved)  # the destination's copy is the truth; a crash may have left the mirror behind
            if options.full_refresh:
                if saved.in_progress:
                    destination.discard_state(target, saved)
                store.delete_state(resource.name)
            elif saved.in_progress and not options.resume:
                refusals.append(checkpoint_refusal(saved))
        finally:
            destination.close()
    if refusals:
        msg = "; ".join(refusals) + ". A run without --resume would load those rows again"
        raise StateError(msg, hint="continue with `conduit run --resume`, or discard with `conduit state reset "
                         "RESOURCE` (or `conduit run --full-refresh` to reload from scratch)")


def run(config: IngestConfig, options: RunOptions | None = None, *, progress: ProgressSink | None = None,
        store: StateStore | None = None) -> RunResult:
    """Run the selected resources and record the run; never raises for a failed resource.

    Raises :class:`StateError` before anything runs if another process holds a
    resource's lock, or a checkpoint waits and ``options.resume`` is not set. If
    preflight finds problems, no resource runs and the result (status failed)
    carries the report in ``preflight``.
    """
    options = options or RunOptions()
    progress = progress or NoProgress()
    selected = select_resources(config, options.resources)
    run_result = RunResult(run_id=uuid.uuid4().hex, config_file=str(config.file), started_at=_now(),
                           dry_run=options.dry_run)
    store = store if store is not None else open_store(config)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if not options.dry_run:
            stack.enter_context(store.lock([r.name for r in selected], run_result.run_id))
            prepare_state(config, selected, options, store)
        try:
            if not options.dry_run and not options.skip_preflight:
                # Until preflight completes the run counts as failed (an interrupt here is recorded so).
                run_result.preflight = {"ok": False, "duration_s": 0.0, "checks": [], "interrupted": True}
                report = preflight(config, selected, batch_size=options.batch_size,
                                   full_refresh=options.full_refresh)
                run_result.preflight = report.to_dict()
                if report.problems:
                    return run_result  # no resource writes anything (recorded as failed, with the report)
            for resource in selected:
                run_result.resources.append(_run_resource(config, resource, options, progress, run_result.run_id,
                                                          store, run_result.resources))
        finally:
            progress.close()
            run_result.finished_at = _now()
            run_result.duration_s = round(time.perf_counter() - started, 3)
            if not options.dry_run:
                store.record(run_result)
    return run_result
