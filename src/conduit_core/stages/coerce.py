"""Coercion: declared types, and for text that the target table types, the table's types. A value that does
not convert sends its row to the dead-letter queue (or fails the load with ``coercion: {strict: true}``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from conduit_core.config.models import DeclaredColumn, ResourceConfig
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.model import TableSchema
from conduit_core.schema.types import type_name
from conduit_core.stages.stage import Rows, StageOutput


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


class CoerceStage:
    """Casts every batch to its declared types; at the first batch it adds the types the target implies."""

    name = "coerce"

    def __init__(self, resource: ResourceConfig, live: Callable[[], TableSchema | None], *, dry: bool = False) -> None:
        self.resource, self._live = resource, live
        # A dry run (preflight) only looks at the types: a bad value is the load's to report, with its row.
        self.strict = resource.coercion.strict and not dry
        self.declared = DeclaredSchema(resource.declared_schema, strict=self.strict) \
            if resource.declared_schema else None
        self._first = True

    def apply(self, rows: Rows) -> StageOutput:
        if self._first:
            self._first = False
            implied = implied_declared(self.resource, self._live(), rows.data.schema)
            if implied:
                self.declared = DeclaredSchema({**(self.resource.declared_schema or {}), **implied},
                                               strict=self.strict)
        if self.declared is None:
            return StageOutput(rows)
        coerced, rejects = self.declared.coerce(rows.as_batch())
        if not rejects:
            return StageOutput(rows.replace(coerced.data))
        keep = np.ones(rows.num_rows, dtype=bool)
        keep[list(rejects)] = False
        return StageOutput(rows.keep(keep, coerced.data),
                           [(int(rows.origin[i]), reason) for i, reason in sorted(rejects.items())])
