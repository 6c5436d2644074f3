"""The schema step of a load: declared types first, then drift against the target and evolution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import DeclaredColumn, ResourceConfig
from conduit_core.connectors.base import BaseDestination, WriteMode, WriteTarget
from conduit_core.engine.results import ResourceResult
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.evolution import plan
from conduit_core.schema.model import TableSchema
from conduit_core.schema.types import type_name


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
        if not self._planned:
            self._planned = True
            live = self.destination.table_schema(self.target)
            self._coerce_text_to(live, batch)
            coerced, rejects = self.declared.coerce(batch) if self.declared is not None else (batch, {})
            self._evolve(live, coerced)
        elif self.declared is not None:
            coerced, rejects = self.declared.coerce(batch)
        else:
            coerced, rejects = batch, {}
        return (self._adapt(coerced) if self._adapt is not None else coerced), rejects

    def _coerce_text_to(self, live: TableSchema | None, batch: Batch) -> None:
        implied = implied_declared(self.resource, live, batch.schema)
        if implied:
            self.declared = DeclaredSchema({**(self.resource.declared_schema or {}), **implied},
                                           strict=self.resource.coercion.strict)

    def _evolve(self, live: TableSchema | None, batch: Batch) -> None:
        """Before anything is written: compare with the target, then stop, alter it, or adapt the batches."""
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


def implied_declared(resource: ResourceConfig, live: TableSchema | None,
                     schema: pa.Schema) -> dict[str, DeclaredColumn]:
    """Text the target table types (a CSV's numbers or dates in a column the source read as text) is
    converted to the table's types, like a declared schema; values that do not convert are rejected."""
    if live is None:
        return {}
    declared = resource.declared_schema or {}
    implied = {}
    for field in schema:
        column = live.get(field.name)
        if (field.name not in declared and column is not None and column.type is not None
                and pa.types.is_string(field.type) and not pa.types.is_string(column.type)
                and _coercible(column.type)):
            implied[field.name] = DeclaredColumn(type=type_name(column.type), nullable=column.nullable)
    return implied


def _coercible(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)
                or pa.types.is_boolean(data_type) or pa.types.is_date(data_type) or pa.types.is_timestamp(data_type))
