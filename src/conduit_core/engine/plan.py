"""What one resource's load needs, resolved once per run from the configuration: an immutable, picklable
value (no connection, no open file), so an executor may hand it to another thread or process, which builds
the connectors from it (:class:`~conduit_core.engine.session.LoadSession`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conduit_core.config.models import CheckpointConfig, ConnectorEntry, IngestConfig, ResourceConfig
from conduit_core.connectors.base import WriteMode, WriteTarget


@dataclass(frozen=True)
class ResourcePlan:
    run_id: str
    resource: ResourceConfig
    source: ConnectorEntry
    destination: ConnectorEntry
    #: The sources the resource's join steps read, by name.
    lookups: tuple[ConnectorEntry, ...]
    target: WriteTarget
    batch_size: int
    checkpoint: CheckpointConfig
    state_dir: Path
    #: Ignore and reset checkpoints and high-water marks, and replace the target.
    full_refresh: bool = False

    def lookup(self, name: str) -> ConnectorEntry:
        return next(entry for entry in self.lookups if entry.name == name)


def write_target(resource: ResourceConfig, *, full_refresh: bool = False) -> WriteTarget:
    mode = WriteMode.FULL_REFRESH if full_refresh else resource.mode
    return WriteTarget(resource=resource.name, mode=mode, table=resource.target_table, path=resource.path,
                       primary_key=resource.primary_key)


def plan_resource(config: IngestConfig, resource: ResourceConfig, run_id: str, *, full_refresh: bool = False,
                  batch_size: int | None = None) -> ResourcePlan:
    joined = {step.join.with_ for step in resource.transforms if step.join is not None}
    return ResourcePlan(
        run_id=run_id, resource=resource, source=config.source(resource.source),
        destination=config.destination(resource.destination),
        lookups=tuple(config.source(name) for name in sorted(joined)),
        target=write_target(resource, full_refresh=full_refresh),
        batch_size=batch_size or resource.batch_size or config.settings.batch_size,
        checkpoint=config.checkpoint(resource), state_dir=Path(config.settings.state_dir), full_refresh=full_refresh)
