"""Run a plan: each resource in turn, with history, progress and clean failure.

The order of a run: take the resources' locks; settle runs a killed process left ``running`` and, with
``--resume``, pick the interrupted run to continue (:mod:`conduit_core.engine.history`); record this run
as ``running``; set up a session per resource (saved state read once, refusals collected for all of
them); preflight every session; then load each resource, recording the run after each one.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors.base import WriteTarget
from conduit_core.engine import cancel, history
from conduit_core.engine.cancel import Cancelled
from conduit_core.engine.plan import ResourcePlan, plan_resource
from conduit_core.engine.plan import write_target as _write_target
from conduit_core.engine.preflight import preflight
from conduit_core.engine.results import ResourceResult, RunResult, Status
from conduit_core.engine.retry import retrying
from conduit_core.engine.session import (
    LoadSession,
    build_destination,
    build_source,
    checkpoint_refusal,
    count_own,
    saved_state,
)
from conduit_core.engine.stream import stream_resource
from conduit_core.errors import ConduitError, ConfigError, FatalError, StateError, environment_problem
from conduit_core.errors import ConnectionError as RetriableError
from conduit_core.observe.progress import NoProgress, ProgressSink
from conduit_core.observe.redact import redact
from conduit_core.quality.dlq import DeadLetterQueue, cut_back
from conduit_core.schema.model import TableSchema
from conduit_core.stages.build import build_pipeline
from conduit_core.stages.build import close as close_pipeline
from conduit_core.state import open_store
from conduit_core.state.store import StateStore

log = logging.getLogger("conduit")

__all__ = ["RunOptions", "build_destination", "build_source", "run", "saved_state", "select_resources",
           "write_target"]


@dataclass(frozen=True)
class RunOptions:
    resources: Sequence[str] = ()
    batch_size: int | None = None
    dry_run: bool = False
    #: Continue the interrupted run (and resources that have a checkpoint); otherwise a checkpoint stops the run.
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


def write_target(resource: ResourceConfig, options: RunOptions) -> WriteTarget:
    return _write_target(resource, full_refresh=options.full_refresh)


def _plan(config: IngestConfig, resource: ResourceConfig, options: RunOptions, run_id: str) -> ResourcePlan:
    return plan_resource(config, resource, run_id, full_refresh=options.full_refresh, batch_size=options.batch_size)


def _check_connections(config: IngestConfig, resource: ResourceConfig) -> None:
    for connector in (build_source(config, resource), build_destination(config, resource)):
        try:
            connector.test_connection()
        finally:
            connector.close()


def _new_result(resource: ResourceConfig) -> ResourceResult:
    return ResourceResult(resource=resource.name, source=resource.source, destination=resource.destination,
                          mode=str(resource.mode), started_at=_now())


def _load(session: LoadSession, result: ResourceResult, progress: ProgressSink, store: StateStore) -> None:
    """Stream the resource through its stages; record the schema it wrote."""
    resource, tracker = session.resource, session.tracker
    assert tracker is not None
    # A resumed load goes on appending to the dead-letter file it started, cut back to its checkpoint.
    resumed_dlq = tracker.resumed.dlq_file if tracker.resumed is not None else None
    if tracker.resumed is not None:
        cut_back(resumed_dlq, tracker.resumed.dlq_bytes)
    dlq = DeadLetterQueue(session.spec.state_dir, resource.name, tracker.run_id,
                          Path(resumed_dlq) if resumed_dlq else None)
    pipeline = build_pipeline(resource, session.destination, session.target, tracker.filter,
                              context=session.step_context())
    completed = False
    try:
        stream_resource(session.batches(), session.destination, session.target, result, progress, tracker,
                        store.put_state, pipeline, dlq, resource.quality_gate)
        completed = True
    finally:
        close_pipeline(pipeline, completed=completed)
        dlq.close()
        if dlq.used:
            result.dlq_file = str(dlq.path)
    if tracker.schema is not None:
        result.schema_version = store.record_schema(resource.name, TableSchema.from_arrow(tracker.schema),
                                                    tracker.run_id)


def _attempt(session: LoadSession, result: ResourceResult, progress: ProgressSink, store: StateStore) -> None:
    """One try of the unit of work; it continues from the last checkpoint, if any."""
    saved = session.saved
    if saved is not None and saved.run_id == session.run_id and not saved.in_progress:
        # An earlier attempt's final commit landed although its outcome looked unknown.
        count_own(saved, result)
        log.warning("[%s] the final commit of attempt %d had landed; nothing left to do", result.resource,
                    result.retries)
        return
    # An estimate may cost a query and a connection: only worth it when someone watches.
    total = None if isinstance(progress, NoProgress) else session.source.estimate_total_records()
    progress.start(result.resource, total)
    try:
        _load(session, result, progress, store)
    except RetriableError as exc:
        if not session.destination.capabilities.transactional:
            msg = f"{exc.message} (not retried: the destination is not transactional, a redo could double rows)"
            raise FatalError(msg) from exc
        raise


def _fresh_session(config: IngestConfig, resource: ResourceConfig, options: RunOptions, run_id: str,
                   store: StateStore, result: ResourceResult, *, resume: bool) -> LoadSession:
    """A new session for an attempt: new connectors, and the state the last attempt left."""
    session = LoadSession(_plan(config, resource, options, run_id))
    try:
        session.read_state(store)
        session.prepare(result, resume=resume)
    except BaseException:
        session.close()
        raise
    return session


def _fail(result: ResourceResult, exc: BaseException) -> None:
    result.status = Status.FAILED
    if isinstance(exc, ConduitError):
        known = environment_problem(exc.__cause__) or exc
        result.error = redact(known.message + (f" (hint: {known.hint})" if known.hint else ""))
        result.error_type = type(known).__name__
        return
    problem = environment_problem(exc)
    if problem is not None:
        result.error = redact(f"{problem.message} (hint: {problem.hint})")
        result.error_type = type(problem).__name__
    else:
        result.error = redact(f"unexpected {type(exc).__name__}: {exc}")
        result.error_type = type(exc).__name__
    result.exception = exc


def _run_resource(config: IngestConfig, session: LoadSession, options: RunOptions, progress: ProgressSink,
                  store: StateStore, result: ResourceResult, unfinished: history.Unfinished | None) -> None:
    """Load one resource, retrying transient failures; fill ``result`` (never raises but to stop the run)."""
    resource, run_id = session.resource, session.run_id
    started = time.perf_counter()
    current: LoadSession | None = session
    try:
        for attempt in retrying(resource.retries, resource.name):
            with attempt:
                result.retries = attempt.retry_state.attempt_number - 1
                if current is not None and current.tracker is None:  # its state could not be read up front
                    current.close()
                    current = LoadSession(current.spec)
                    verdict = _decide(current, result, options, store, unfinished)
                    if verdict == "":
                        return
                    if verdict is not None:
                        raise StateError(verdict, hint="resume it with `conduit run --resume`, or discard it with "
                                                       f"`conduit state reset {resource.name}`")
                elif current is None:  # a retry: it continues this run's own checkpoints
                    _reset_counts(result)
                    current = _fresh_session(config, resource, options, run_id, store, result, resume=True)
                try:
                    _attempt(current, result, progress, store)
                finally:
                    current.close()
                    current = None
        result.status = Status.PARTIAL_SUCCESS if result.rows_dlq else Status.SUCCESS
    except Exception as exc:  # noqa: BLE001 - a failed (or broken) resource fails itself, not the run
        _fail(result, exc)
    except BaseException as exc:  # a signal, Ctrl-C: the load rolled back to its last checkpoint
        result.status = Status.INTERRUPTED
        result.error = f"interrupted ({exc}); {result.rows_written:,} rows committed" if isinstance(exc, Cancelled) \
            else f"interrupted ({type(exc).__name__})"
        result.error_type = type(exc).__name__
        raise
    finally:
        if current is not None:
            current.close()
        result.finished_at = _now()
        result.duration_s = round(time.perf_counter() - started, 3)
        progress.finish(resource.name, str(result.status))


def _reset_counts(result: ResourceResult) -> None:
    result.rows_read = result.rows_written = result.rows_dlq = result.rows_filtered = result.batches = 0
    result.checkpoints = 0
    result.files_read = []


def _decide(session: LoadSession, result: ResourceResult, options: RunOptions, store: StateStore,
            unfinished: history.Unfinished | None) -> str | None:
    """Read the resource's saved state and plan the load (None); or skip it, because its load completed in the
    run being resumed (``""``, ``result`` marked skipped); or refuse it (the reason). Raises a
    :class:`ConduitError` when the state cannot be read."""
    resource = session.resource
    try:
        saved = session.read_state(store)
    except StateError as exc:
        if not options.full_refresh:
            return f"{exc.message} ({exc.hint})"
        saved = session.destination.read_state(session.target)  # reloading from scratch: it goes
    done = history.completed_in(unfinished, resource, saved) if options.resume else None
    if done is not None:
        result.status, result.completed_in = Status.SKIPPED, done
        log.warning("[%s] skipped: its load completed in run %s, which this run resumes", resource.name, done)
        return ""
    if options.full_refresh and saved is not None:
        if saved.in_progress:
            session.destination.discard_state(session.target, saved)
        store.delete_state(resource.name)
        session.saved = None
    elif saved is not None and saved.in_progress and not options.resume:
        return checkpoint_refusal(saved)
    session.prepare(result, resume=options.resume)
    return None


def _open_sessions(config: IngestConfig, selected: Sequence[ResourceConfig], options: RunOptions, run_id: str,
                   store: StateStore, unfinished: history.Unfinished | None,
                   results: dict[str, ResourceResult]) -> dict[str, LoadSession]:
    """A session per resource to load, with its saved state; the resources an interrupted run had completed
    are skipped. Every refusal (a checkpoint without --resume, a state of another target) is collected first
    and raised together, before anything runs."""
    sessions: dict[str, LoadSession] = {}
    refusals: list[str] = []
    try:
        for resource in selected:
            cancel.check()
            session = LoadSession(_plan(config, resource, options, run_id))
            sessions[resource.name] = session
            result = results[resource.name] = _new_result(resource)
            try:
                verdict = _decide(session, result, options, store, unfinished)
            except ConduitError as exc:
                # Unreachable now: preflight reports it; without preflight the attempt decides again (and retries).
                session.state_error = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
                continue
            if verdict == "":
                session.close()
                del sessions[resource.name]
            elif verdict is not None:
                refusals.append(verdict)
        if refusals:
            msg = "; ".join(refusals) + ". A run without --resume would load those rows again"
            raise StateError(msg, hint="continue with `conduit run --resume`, or discard with `conduit state reset "
                             "RESOURCE` (or `conduit run --full-refresh` to reload from scratch)")
    except BaseException:
        for session in sessions.values():
            session.close()
        raise
    return sessions


def _dry_run(config: IngestConfig, selected: Sequence[ResourceConfig], run_result: RunResult) -> RunResult:
    for resource in selected:
        result = _new_result(resource)
        run_result.resources.append(result)
        try:
            _check_connections(config, resource)
            result.status = Status.SKIPPED
        except Exception as exc:  # noqa: BLE001 - reported per resource
            _fail(result, exc)
        result.finished_at = _now()
    run_result.finished_at = _now()
    return run_result


def run(config: IngestConfig, options: RunOptions | None = None, *, progress: ProgressSink | None = None,
        store: StateStore | None = None) -> RunResult:
    """Run the selected resources and record the run; never raises for a failed resource.

    Raises :class:`StateError` before anything runs if another process holds a resource's lock, or a
    checkpoint waits and ``options.resume`` is not set. If preflight finds problems, no resource runs and
    the result (status failed) carries the report in ``preflight``. A signal (see
    :mod:`conduit_core.engine.cancel`) stops the run cleanly: the result's status is ``interrupted``.
    """
    options = options or RunOptions()
    progress = progress or NoProgress()
    if options.resume and options.full_refresh:
        msg = "--resume continues loads and --full-refresh replaces them: use one of the two"
        raise ConfigError(msg)
    selected = select_resources(config, options.resources)
    run_result = RunResult(run_id=uuid.uuid4().hex, config_file=str(config.file), started_at=_now(),
                           dry_run=options.dry_run)
    if options.dry_run:
        return _dry_run(config, selected, run_result)
    store = store if store is not None else open_store(config)
    started = time.perf_counter()
    results: dict[str, ResourceResult] = {}
    sessions: dict[str, LoadSession] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(store.lock([r.name for r in selected], run_result.run_id))
        unfinished = history.find_unfinished(config, store, [r.name for r in selected])
        if unfinished is not None and options.resume:
            # Recorded from the start: a run stopped before it loads still continues this chain.
            run_result.resumes = unfinished.run_id
            if not options.resources:  # the interrupted run's resources (those still configured)
                selected = [r for r in selected if r.name in unfinished.planned]
        run_result.planned = [r.name for r in selected]
        recorded = False
        try:
            sessions = _open_sessions(config, selected, options, run_result.run_id, store,
                                      unfinished if options.resume else None, results)
            store.record(run_result)  # running: a kill from here on leaves a trace
            recorded = True
            _execute(config, selected, sessions, results, options, progress, store, run_result, unfinished)
        except Cancelled as exc:
            run_result.interrupted = exc.name
        except BaseException as exc:
            if not isinstance(exc, Exception):  # Ctrl-C without conduit's signal handling (library use)
                run_result.interrupted = type(exc).__name__
            raise
        finally:
            for session in sessions.values():
                session.close()
            progress.close()
            run_result.finished_at = _now()
            run_result.duration_s = round(time.perf_counter() - started, 3)
            if recorded or run_result.interrupted:
                store.record(run_result)
    return run_result


def _execute(config: IngestConfig, selected: Sequence[ResourceConfig], sessions: dict[str, LoadSession],
             results: dict[str, ResourceResult], options: RunOptions, progress: ProgressSink, store: StateStore,
             run_result: RunResult, unfinished: history.Unfinished | None) -> None:
    """Preflight, then each resource in order, recording the run after each one."""
    if not options.skip_preflight and not _preflight(config, list(sessions.values()), run_result):
        return  # no resource writes anything (recorded as failed, with the report)
    if unfinished is not None:  # only a run that goes on to load continues (or supersedes) the interrupted one
        history.link(store, unfinished, run_result, resumed=options.resume)
    for resource in selected:
        result = results[resource.name]
        run_result.resources.append(result)
        session = sessions.pop(resource.name, None)
        if session is not None:
            _run_resource(config, session, options, progress, store, result, unfinished)
        store.record(run_result)


def _preflight(config: IngestConfig, sessions: list[LoadSession], run_result: RunResult) -> bool:
    """Preflight every session; the run's manifest carries the report. False: problems, nothing may run."""
    # Until preflight completes the run counts as failed (an interrupt here is recorded so).
    run_result.preflight = {"ok": False, "duration_s": 0.0, "checks": [], "interrupted": True}
    report = preflight(config, sessions)
    run_result.preflight = report.to_dict()
    # A source that can be read again gives its connection back until its turn (the first one loads now).
    for session in sessions[1:]:
        session.release()
    return not report.problems
