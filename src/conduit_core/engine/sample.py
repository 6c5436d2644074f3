"""Read the first rows of a resource's source (for schema inference, schema-compare and preflight)."""

from __future__ import annotations

import pyarrow as pa

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.engine.names import ColumnNames
from conduit_core.engine.plan import plan_resource
from conduit_core.engine.session import LoadSession
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.types import unify
from conduit_core.stages.build import build_pipeline
from conduit_core.stages.build import close as close_pipeline
from conduit_core.stages.evolve import EvolveStage
from conduit_core.stages.stage import Pipeline


def sample(config: IngestConfig, resource: ResourceConfig, rows: int, batch_size: int | None = None, *,
           written: bool = False) -> tuple[pa.Schema, pa.Table]:
    """The source's schema (declared types applied; types unified across the sampled batches) and up to
    ``rows`` rows. The source is closed after reading only what the sample needs. ``batch_size`` is the
    size a run would ask for (sources such as CSV infer types from a block of about that size).
    ``written``: the rows as the load would write them, after the transform steps (run dry, as preflight
    runs them), not as the source reads them."""
    session = LoadSession(plan_resource(config, resource, "sample", batch_size=batch_size or max(min(rows, 50_000), 1)))
    names = ColumnNames(resource.name, case_insensitive=session.destination.capabilities.case_insensitive_names)
    declared = DeclaredSchema(resource.declared_schema) if resource.declared_schema else None
    stages = None
    if written:  # up to the last step: judging the rows against the target is what the caller does
        built = build_pipeline(resource, session.destination, session.target, dry=True,
                               context=session.step_context())
        stages = Pipeline([stage for stage in built.stages if not isinstance(stage, EvolveStage)])
    batches: list[pa.RecordBatch] = []
    schema: pa.Schema | None = None
    seen = 0
    try:
        for read in session.batches():
            batch = names.apply(read)
            if stages is not None:
                shaped = stages.run(batch).rows.as_batch()
            else:
                shaped = declared.coerce(batch)[0] if declared is not None else batch  # rejects: the run's DLQ
            schema = shaped.schema if schema is None else _unify(schema, shaped.schema)
            batches.append(shaped.data.slice(0, rows - seen))
            seen += batches[-1].num_rows
            if seen >= rows:
                break
    finally:
        if stages is not None:
            close_pipeline(stages)
        session.close()
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
