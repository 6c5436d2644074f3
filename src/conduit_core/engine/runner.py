"""Run a plan: each resource in turn, with history, progress and clean failure."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors import registry
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest, WriteTarget
from conduit_core.engine.results import ResourceResult, RunResult, Status
from conduit_core.engine.retry import retrying
from conduit_core.engine.stream import stream_resource
from conduit_core.errors import ConduitError, ConfigError, FatalError
from conduit_core.errors import ConnectionError as RetriableError
from conduit_core.observe.progress import NoProgress, ProgressSink
from conduit_core.observe.redact import redact
from conduit_core.state.history import RunHistory


@dataclass(frozen=True)
class RunOptions:
    resources: Sequence[str] = ()
    batch_size: int | None = None
    dry_run: bool = False


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


def _attempt(config: IngestConfig, resource: ResourceConfig, options: RunOptions, progress: ProgressSink,
             result: ResourceResult) -> None:
    """One try of the whole unit of work, with fresh connectors (and so a fresh transaction)."""
    result.rows_read = result.rows_written = result.rows_dlq = result.rows_filtered = result.batches = 0
    result.files_read = []
    source: BaseSource | None = None
    destination: BaseDestination | None = None
    try:
        source = build_source(config, resource)
        destination = build_destination(config, resource)
        batch_size = options.batch_size or resource.batch_size or config.settings.batch_size
        request = ReadRequest(batch_size=batch_size, query=resource.query)
        target = WriteTarget(resource=resource.name, mode=resource.mode, table=resource.target_table,
                             path=resource.path, primary_key=resource.primary_key)
        # An estimate may cost a query and a connection: only worth it when someone watches.
        total = None if isinstance(progress, NoProgress) else source.estimate_total_records()
        progress.start(resource.name, total)
        try:
            stream_resource(source, destination, target, request, result, progress)
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


def _run_resource(config: IngestConfig, resource: ResourceConfig, options: RunOptions,
                  progress: ProgressSink, interrupted: list[ResourceResult] | None = None) -> ResourceResult:
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
                _attempt(config, resource, options, progress, result)
        result.status = Status.PARTIAL_SUCCESS if result.rows_dlq else Status.SUCCESS
    except ConduitError as exc:
        result.status = Status.FAILED
        result.error = redact(exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
        result.error_type = type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - an unexpected bug fails this resource, not the whole run
        result.status = Status.FAILED
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


def run(config: IngestConfig, options: RunOptions | None = None, *, progress: ProgressSink | None = None,
        history: RunHistory | None = None) -> RunResult:
    """Run the selected resources and record the run; never raises for a failed resource."""
    options = options or RunOptions()
    progress = progress or NoProgress()
    selected = select_resources(config, options.resources)
    run_result = RunResult(run_id=uuid.uuid4().hex, config_file=str(config.file), started_at=_now(),
                           dry_run=options.dry_run)
    started = time.perf_counter()
    history = history if history is not None else RunHistory(config.settings.state_dir)
    try:
        for resource in selected:
            run_result.resources.append(_run_resource(config, resource, options, progress, run_result.resources))
    finally:
        progress.close()
        run_result.finished_at = _now()
        run_result.duration_s = round(time.perf_counter() - started, 3)
        if not options.dry_run:
            history.record(run_result)
    return run_result
