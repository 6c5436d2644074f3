"""`conduit dlq replay`: send dead-letter records (as they were, or corrected) through the same checks and
coercion into the resource's destination, and mark the dead-letter file replayed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conduit_core.batch import Batch, records_to_batch
from conduit_core.config.models import CheckpointConfig, DeclaredColumn, IngestConfig, ResourceConfig
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest, WriteMode, WriteTarget
from conduit_core.engine.results import ResourceResult, RunResult, Status
from conduit_core.engine.runner import RunOptions, build_destination, write_target
from conduit_core.engine.session import checkpoint_refusal, saved_state
from conduit_core.engine.stream import stream_resource
from conduit_core.engine.tracker import LoadTracker
from conduit_core.errors import ConfigError, StateError
from conduit_core.observe.progress import NoProgress
from conduit_core.quality.dlq import DeadLetterQueue, dlq_dir, read_entries
from conduit_core.schema.types import type_name
from conduit_core.stages.build import build_pipeline
from conduit_core.stages.build import close as close_pipeline
from conduit_core.stages.lookups import Lookups
from conduit_core.stages.transforms import StepContext
from conduit_core.state import open_store
from conduit_core.state.resume import ResumeState
from conduit_core.state.store import StateStore, now


class _Records(BaseSource):
    """The records to replay, in one batch."""

    def __init__(self, records: list[dict[str, Any]], source_file: str) -> None:
        super().__init__({})
        self.records, self.source_file = records, source_file

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        if self.records:
            yield Batch(records_to_batch(self.records), source_file=self.source_file)


def dlq_file(config: IngestConfig, resource: str, run_id: str) -> Path:
    path = dlq_dir(config.settings.state_dir, resource) / f"{run_id}.jsonl"
    if not path.exists():
        msg = f"no dead-letter file for resource {resource!r} and run {run_id!r} ({path})"
        raise ConfigError(msg, hint="`conduit dlq list` shows the runs that have one")
    return path


def replay(config: IngestConfig, resource: ResourceConfig, run_id: str, fixed: Path | None = None) -> RunResult:
    """Load the records of ``run_id``'s dead-letter file (or of ``fixed``) and mark that file replayed.

    Like a run, a replay holds the resource's lock, and it keeps the state it finds: the high-water mark
    stays (the replayed rows do not move it), and a load waiting at a checkpoint must be resumed or reset
    first, since the replay's commit would replace its state.
    """
    original = dlq_file(config, resource.name, run_id)
    source_path = fixed or original
    records = [e["record"] if isinstance(e, dict) and "record" in e else e for e in read_entries(source_path)]
    replay_id = uuid.uuid4().hex
    result = RunResult(run_id=replay_id, config_file=str(config.file), started_at=now(), planned=[resource.name])
    res = ResourceResult(resource=resource.name, source=f"dlq:{run_id}", destination=resource.destination,
                         mode=str(resource.mode), started_at=now())
    result.resources.append(res)
    store = open_store(config)
    with store.lock([resource.name], replay_id):
        destination = build_destination(config, resource)
        # A replay adds rows: a full_refresh resource must not be replaced by its rejected rows alone.
        mode = WriteMode.APPEND if resource.mode is WriteMode.FULL_REFRESH else resource.mode
        target = write_target(resource.model_copy(update={"mode": mode}), RunOptions())
        try:
            saved = saved_state(destination, target, store)
            if saved is not None and saved.in_progress:
                msg = f"{checkpoint_refusal(saved)}; a replay would replace that checkpoint's state"
                raise StateError(msg, hint="finish the load first with `conduit run --resume`, or discard it with "
                                           f"`conduit state reset {resource.name}`")
            _replay(config, resource, records, source_path, (destination, target), res, replay_id, saved, store)
            res.status = Status.PARTIAL_SUCCESS if res.rows_dlq else Status.SUCCESS
        except BaseException as exc:
            res.status, res.error, res.error_type = Status.FAILED, str(exc), type(exc).__name__
            raise
        finally:
            destination.close()
            res.finished_at = result.finished_at = now()
            store.record(result)
    marker = original.with_suffix(".replayed.json")
    marker.write_text(json.dumps({"replayed_by": replay_id, "at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "file": str(source_path), "rows_written": res.rows_written,
                                  "rows_dlq": res.rows_dlq}, indent=2) + "\n", encoding="utf-8")
    return result


def _replay(config: IngestConfig, resource: ResourceConfig, records: list[dict[str, Any]], source_path: Path,
            ends: tuple[BaseDestination, WriteTarget], res: ResourceResult, replay_id: str,
            saved: ResumeState | None, store: StateStore) -> None:
    destination, target = ends
    declared = dict(resource.declared_schema or {})
    live = destination.table_schema(target)
    # JSON loses types (dates and decimals arrive as text): cast to the target's own column types.
    for column in live or ():
        if column.type is not None and column.name not in declared and records and column.name in records[0]:
            declared[column.name] = DeclaredColumn(type=type_name(column.type), nullable=column.nullable)
    shaped = resource.model_copy(update={"declared_schema": declared or None, "incremental": None,
                                         "mode": target.mode})
    tracker = LoadTracker(resource.name, replay_id, CheckpointConfig(every_seconds=None), None, None, resume=False,
                          target=destination.target_id(target), carry=saved)
    dlq = DeadLetterQueue(config.settings.state_dir, resource.name, replay_id)
    joined = sorted({step.join.with_ for step in resource.transforms if step.join is not None})
    lookups = Lookups([config.source(name) for name in joined], config.settings.batch_size)
    pipeline = build_pipeline(shaped, destination, target, context=StepContext(lookups))
    try:
        batches = _Records(records, str(source_path)).read_batches(ReadRequest())
        stream_resource(batches, destination, target, res, NoProgress(), tracker, store.put_state, pipeline, dlq,
                        shaped.quality_gate)
    finally:
        close_pipeline(pipeline)
        lookups.close()
        dlq.close()
