"""The schema step of a load: declared types first, then drift against the target and evolution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conduit_core.batch import Batch
from conduit_core.config.models import ResourceConfig
from conduit_core.connectors.base import BaseDestination, WriteMode, WriteTarget
from conduit_core.engine.results import ResourceResult
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.evolution import plan


class SchemaStage:
    """Shapes every batch of one load; at the first batch it checks drift and evolves the target."""

    def __init__(self, resource: ResourceConfig, destination: BaseDestination, target: WriteTarget,
                 result: ResourceResult) -> None:
        self.resource, self.destination, self.target, self.result = resource, destination, target, result
        self.declared = DeclaredSchema(resource.declared_schema, strict=resource.coercion.strict) \
            if resource.declared_schema else None
        self._adapt: Callable[[Batch], Batch] | None = None
        self._planned = False

    def __call__(self, batch: Batch) -> tuple[Batch, dict[int, dict[str, Any]]]:
        """The batch in its declared types (rows that do not convert left out and returned as rejects,
        keyed by their row in ``batch``), adapted to the target."""
        rejects: dict[int, dict[str, Any]] = {}
        if self.declared is not None:
            batch, rejects = self.declared.coerce(batch)
        if not self._planned:
            self._planned = True
            self._evolve(batch)
        return (self._adapt(batch) if self._adapt is not None else batch), rejects

    def _evolve(self, batch: Batch) -> None:
        """Before anything is written: compare with the target, then stop, alter it, or adapt the batches."""
        live = self.destination.table_schema(self.target)
        keys = self.target.primary_key if self.target.mode is WriteMode.MERGE else ()
        decided = plan(live, batch.schema, self.resource.schema_evolution, keys=keys, resource=self.resource.name,
                       types_known=batch.num_rows > 0)
        if decided.drift:
            self.result.schema_drift = decided.drift.to_dict()
        if decided.apply:
            statements = self.destination.evolve(self.target, decided.apply)
            self.result.schema_changes = [{**c.to_dict(), "ddl": statements} for c in decided.apply] if statements \
                else [c.to_dict() for c in decided.apply]
        self._adapt = decided.adapter()
