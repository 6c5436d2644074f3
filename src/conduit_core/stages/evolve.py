"""Schema evolution: at the first batch the rows as they will be written are compared with the target, and the
load stops, alters the target, or adapts every batch to it (see :mod:`conduit_core.schema.evolution`). It is
the last stage, so it judges the schema after every transform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conduit_core.batch import Batch
from conduit_core.config.models import ResourceConfig
from conduit_core.connectors.base import BaseDestination, WriteMode, WriteTarget
from conduit_core.schema.evolution import plan
from conduit_core.schema.model import TableSchema
from conduit_core.stages.stage import Rows, StageOutput


class EvolveStage:
    name = "evolve"

    def __init__(self, resource: ResourceConfig, destination: BaseDestination, target: WriteTarget,
                 live: Callable[[], TableSchema | None], *, dry: bool = False) -> None:
        self.resource, self.destination, self.target, self._live = resource, destination, target, live
        self.dry = dry
        #: The drift found at the first batch, and the changes ``auto`` applied (with their DDL).
        self.drift: dict[str, Any] | None = None
        self.changes: list[dict[str, Any]] = []
        self.summary = ""
        self._adapt: Callable[[Batch], Batch] | None = None
        self._planned = False

    def apply(self, rows: Rows) -> StageOutput:
        if not self._planned:
            self._planned = True
            self._evolve(rows)
        if self._adapt is None:
            return StageOutput(rows)
        return StageOutput(rows.replace(self._adapt(rows.as_batch()).data))

    def _evolve(self, rows: Rows) -> None:
        """Before anything is written: compare with the target, then stop, alter it, or adapt the batches."""
        keys = self.target.primary_key if self.target.mode is WriteMode.MERGE else ()
        decided = plan(self._live(), rows.data.schema, self.resource.schema_evolution, keys=keys,
                       resource=self.resource.name, types_known=rows.num_rows > 0)
        if decided.drift:
            self.drift = decided.drift.to_dict()
            self.summary = decided.drift.summary()
        if decided.apply and not self.dry:
            statements = self.destination.evolve(self.target, decided.apply)
            self.changes = [{**c.to_dict(), "ddl": statements} for c in decided.apply] if statements \
                else [c.to_dict() for c in decided.apply]
        self._adapt = decided.adapter()
