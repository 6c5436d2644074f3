"""Read the first rows of a resource's source (for schema inference, schema-compare and preflight)."""

from __future__ import annotations

import contextlib

import pyarrow as pa

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors import registry
from conduit_core.connectors.base import ReadRequest
from conduit_core.engine.names import ColumnNames
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.types import unify


def sample(config: IngestConfig, resource: ResourceConfig, rows: int,
           batch_size: int | None = None) -> tuple[pa.Schema, pa.Table]:
    """The source's schema (declared types applied; types unified across the sampled batches) and up to
    ``rows`` rows. The source is closed after reading only what the sample needs. ``batch_size`` is the
    size a run would ask for (sources such as CSV infer types from a block of about that size)."""
    from conduit_core.engine.runner import build_source

    source = build_source(config, resource)
    capabilities = registry.destination_class(config.destination(resource.destination).type).capabilities
    names = ColumnNames(resource.name, case_insensitive=capabilities.case_insensitive_names)
    declared = DeclaredSchema(resource.declared_schema) if resource.declared_schema else None
    batches: list[pa.RecordBatch] = []
    schema: pa.Schema | None = None
    seen = 0
    try:
        size = batch_size or max(min(rows, 50_000), 1)
        stream = source.read_batches(ReadRequest(batch_size=size, query=resource.query))
        try:
            for read in stream:
                batch = names.apply(read)
                shaped = declared.coerce(batch)[0] if declared is not None else batch  # rejects: the run's DLQ
                schema = shaped.schema if schema is None else _unify(schema, shaped.schema)
                batches.append(shaped.data.slice(0, rows - seen))
                seen += batches[-1].num_rows
                if seen >= rows:
                    break
        finally:
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[attr-defined]
    finally:
        source.close()
    schema = schema if schema is not None else pa.schema([])
    table = pa.Table.from_batches([b.cast(schema) if not b.schema.equals(schema) else b for b in batches], schema)
    return schema, table


def _unify(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    fields = {f.name: f for f in a}
    for f in b:
        known = fields.get(f.name)
        fields[f.name] = f if known is None else known.with_type(unify(known.type, f.type)).with_nullable(
            known.nullable or f.nullable)
    return pa.schema(list(fields.values()))
