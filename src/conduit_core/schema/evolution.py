"""Schema evolution at the start of a load: compare what arrives with the target, then stop, alter or adapt.

- ``manual`` (default): any drift stops the resource before it writes anything;
  the error lists the changes and what ``auto`` would do.
- ``auto``: adds new columns and widens types in the target (never a lossy
  change), records the DDL in the manifest, and loads.
- ``warn``: logs the drift and loads what fits: new columns are not written,
  types are cast to the target's, removed columns follow ``on_column_removed``.

``on_column_removed``: ``fail`` (drift that stops every mode), ``ignore`` (the
column is left out: NULL or its default in a table), ``fill_null`` (written as
NULL). ``on_type_change``: ``widen`` (auto may widen) or ``fail``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import SchemaEvolutionConfig
from conduit_core.errors import DataError
from conduit_core.schema.diff import Change, ChangeKind, SchemaDiff, diff
from conduit_core.schema.model import Column, TableSchema
from conduit_core.schema.types import Relation

log = logging.getLogger("conduit")


class SchemaDriftError(DataError):
    """The source's schema drifted from the target's and the resource's mode does not allow it."""

    def __init__(self, message: str, drift: SchemaDiff, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.drift = drift


def render(drift: SchemaDiff) -> str:
    """A plain-text table of the changes (for errors and logs)."""
    rows = [("column", "change", "target", "source", "compatible", "auto would")]
    rows += [(c.column, c.kind.replace("_", " "), c.old or "-", c.new or "-", "yes" if c.compatible else "NO",
              c.action or ("nothing (values fit)" if c.relation is Relation.FITS else "-")) for c in drift.changes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


@dataclass
class EvolutionPlan:
    drift: SchemaDiff
    #: Changes ``auto`` applies to the target before loading.
    apply: list[Change] = field(default_factory=list)
    #: Columns of the data that are not written (``warn``: columns the target lacks).
    drop: list[str] = field(default_factory=list)
    #: Columns written as NULL (``fill_null``), with their target type.
    fill: list[tuple[str, pa.DataType]] = field(default_factory=list)
    #: Columns cast to the target's type (values fit).
    cast: dict[str, pa.DataType] = field(default_factory=dict)

    def adapter(self) -> Callable[[Batch], Batch] | None:
        if not (self.drop or self.fill or self.cast):
            return None

        def adapt(batch: Batch) -> Batch:
            data = batch.data
            if self.drop:
                data = data.drop_columns([n for n in self.drop if n in data.schema.names])
            for name, data_type in self.cast.items():
                index = data.schema.get_field_index(name)
                if index >= 0 and not data.schema.field(index).type.equals(data_type):
                    data = data.set_column(index, pa.field(name, data_type), data.column(index).cast(data_type))
            for name, data_type in self.fill:
                data = data.append_column(pa.field(name, data_type), pa.nulls(data.num_rows, data_type))
            return replace(batch, data=data)

        return adapt


def plan(target: TableSchema | None, incoming: pa.Schema, config: SchemaEvolutionConfig, *,
         keys: tuple[str, ...] = (), resource: str = "", types_known: bool = True) -> EvolutionPlan:
    """Decide what to do with the drift from ``target`` to ``incoming``; raise :class:`SchemaDriftError` to stop.

    ``types_known=False`` (the data has no rows, e.g. a header-only CSV): only column names are compared.
    """
    if target is None:
        return EvolutionPlan(SchemaDiff())
    declared = frozenset(f.name for f in incoming if (f.metadata or {}).get(b"conduit.declared"))
    arriving = TableSchema.from_arrow(incoming)
    if not types_known:
        arriving = TableSchema(tuple(Column(c.name, None, c.nullable) for c in arriving))
    drift = diff(target, arriving, nullability_for=declared, exempt=frozenset(keys))
    result = EvolutionPlan(drift)
    for change in drift.of(ChangeKind.TYPE):
        if change.relation is Relation.FITS and (column := target.get(change.column)) and column.type is not None:
            result.cast[change.column] = column.type
    if not drift:
        return result
    where = f"resource {resource!r}: " if resource else ""
    table = render(drift)
    removed = drift.of(ChangeKind.REMOVED)
    if config.mode == "manual":
        msg = (f"{where}the source's schema drifted from the target's, and schema_evolution.mode is manual, so "
               f"nothing was written:\n{table}")
        raise SchemaDriftError(msg, drift, hint="set schema_evolution: {mode: auto} to apply the compatible "
                               "changes, or change the target by hand; `conduit schema-compare` shows the drift")
    if removed and config.on_column_removed == "fail":
        msg = (f"{where}column(s) {[c.column for c in removed]} are no longer in the source "
               f"(on_column_removed: fail), so nothing was written:\n{table}")
        raise SchemaDriftError(msg, drift, hint="set schema_evolution.on_column_removed to ignore or fill_null")
    if config.on_column_removed == "fill_null":
        result.fill = [(c.column, (target.get(c.column).type or pa.string())) for c in removed  # type: ignore[union-attr]
                       if target.get(c.column) is not None]
    incompatible = [c for c in drift.changes if c.kind is ChangeKind.TYPE and not c.compatible]
    if incompatible:
        msg = (f"{where}column(s) {[c.column for c in incompatible]} changed type in a way no load can absorb "
               f"without losing values:\n{table}")
        raise SchemaDriftError(msg, drift, hint="convert the values in the source (a query, or `schema:`), "
                               "or change the target by hand")
    widen = [c for c in drift.of(ChangeKind.TYPE) if c.relation is Relation.WIDER]
    if config.mode == "auto":
        if widen and config.on_type_change == "fail":
            msg = f"{where}column(s) {[c.column for c in widen]} need a wider type (on_type_change: fail):\n{table}"
            raise SchemaDriftError(msg, drift, hint="set schema_evolution.on_type_change: widen")
        result.apply = [c for c in drift.changes if c.target is not None]
        log.warning("[%s] schema drift, applying: %s", resource, "; ".join(str(c.action) for c in result.apply))
        return result
    # warn: load what fits the target as it is.
    if widen:
        msg = (f"{where}column(s) {[c.column for c in widen]} need a wider type, which mode warn does not "
               f"apply:\n{table}")
        raise SchemaDriftError(msg, drift, hint="use schema_evolution: {mode: auto}, or widen the column by hand")
    result.drop = [c.column for c in drift.of(ChangeKind.ADDED)]
    log.warning("[%s] schema drift (mode warn: not applied; new columns are not written): %s", resource,
                drift.summary())
    return result
