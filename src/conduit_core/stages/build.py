"""The stages of a resource's load, in order: coercion to declared types, the incremental filter, the transform
steps, the quality checks, and schema evolution against the target (last, so it sees the rows as they will be
written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache

from conduit_core.config.models import ResourceConfig
from conduit_core.connectors.base import BaseDestination, WriteTarget
from conduit_core.engine.incremental import IncrementalFilter
from conduit_core.schema.model import TableSchema
from conduit_core.stages.coerce import CoerceStage
from conduit_core.stages.evolve import EvolveStage
from conduit_core.stages.incremental import IncrementalStage
from conduit_core.stages.quality import QualityStage
from conduit_core.stages.stage import Pipeline, Stage
from conduit_core.stages.transforms import StepContext, build_steps


def live_schema(destination: BaseDestination, target: WriteTarget) -> Callable[[], TableSchema | None]:
    """The target's schema, asked of the destination once (at the first batch), when a stage needs it."""
    return cache(lambda: destination.table_schema(target))


def build_pipeline(resource: ResourceConfig, destination: BaseDestination, target: WriteTarget,
                   incremental: IncrementalFilter | None = None, *, dry: bool = False,
                   live: Callable[[], TableSchema | None] | None = None,
                   context: StepContext | None = None) -> Pipeline:
    """The resource's stages. ``dry`` (preflight): no checks run and the target is not altered; the stages
    only say what the rows will look like, and whether the target may take them. ``live``: the target's
    schema when the caller already has it. ``context``: what the transform steps need from the load."""
    live = live or live_schema(destination, target)
    context = replace(context or StepContext(), dry=dry)
    stages: list[Stage] = [CoerceStage(resource, live, dry=dry)]
    if incremental is not None:
        stages.append(IncrementalStage(incremental))
    stages.extend(build_steps(resource.transforms, strict=resource.coercion.strict and not dry, context=context))
    if resource.quality_checks and not dry:
        stages.append(QualityStage(resource))
    stages.append(EvolveStage(resource, destination, target, live, dry=dry))
    return Pipeline(stages)


def close(pipeline: Pipeline, *, completed: bool = False) -> None:
    """Release what the stages hold (DuckDB connections, the on-disk state of uniqueness checks); once the
    load ``completed`` (its final commit landed), also what they kept for a resume."""
    for stage in pipeline.stages:
        if completed and (discard := getattr(stage, "discard", None)) is not None:
            discard()
        closing = getattr(stage, "close", None)
        if closing is not None:
            closing()
