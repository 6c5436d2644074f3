"""Preflight: check every selected resource before any of them writes, and report every problem at once.

For each resource: the source opens and yields its first batch (so its schema
is known), the destination is reachable and writable, the primary-key,
incremental, checkpoint and quality-check columns exist in the source's schema, and the drift
against the target is allowed by ``schema_evolution``. Nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors import registry
from conduit_core.connectors.base import WriteMode
from conduit_core.engine import cancel
from conduit_core.engine.names import NAMES_HINT, ColumnNames, kind_of, name_problems
from conduit_core.engine.plan import plan_resource
from conduit_core.engine.session import LoadSession
from conduit_core.errors import EXIT_PREFLIGHT, ConduitError, StateError, environment_problem
from conduit_core.observe.redact import redact
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.model import TableSchema
from conduit_core.stages.build import build_pipeline
from conduit_core.stages.build import close as close_pipeline
from conduit_core.stages.evolve import EvolveStage
from conduit_core.stages.stage import Pipeline, Rows


class PreflightError(ConduitError):
    """At least one resource failed preflight; no resource wrote anything."""

    exit_code = EXIT_PREFLIGHT


@dataclass
class Check:
    resource: str
    check: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "duration_s": self.duration_s, "checks": [asdict(c) for c in self.checks]}

    def message(self) -> str:
        lines = [f"preflight found {len(self.problems)} problem(s); no resource was run:"]
        lines += [f"  - {c.resource}: {c.check}: {c.detail}" for c in self.problems]
        return "\n".join(lines)


def _check(report: PreflightReport, resource: str, name: str, step: Callable[[], str]) -> bool:
    cancel.check()
    started = time.perf_counter()
    try:
        detail, ok = step(), True
    except StateError:
        raise  # saved state needs a decision (exit 5): not a problem of this resource's setup
    except ConduitError as exc:
        known = environment_problem(exc.__cause__) or exc
        detail, ok = known.message + (f" (hint: {known.hint})" if known.hint else ""), False
    except Exception as exc:  # noqa: BLE001 - a broken plugin is a preflight problem, not a crash
        problem = environment_problem(exc)
        detail = f"{problem.message} (hint: {problem.hint})" if problem else f"unexpected {type(exc).__name__}: {exc}"
        ok = False
    report.checks.append(Check(resource, name, ok, redact(detail), round(time.perf_counter() - started, 3)))
    return ok


class _ResourceChecks:
    """The checks of one resource's session; each returns its detail or raises. What one finds, the next uses."""

    def __init__(self, config: IngestConfig, session: LoadSession) -> None:
        self.config, self.session, self.resource = config, session, session.resource
        self.target = session.target
        self.schema: pa.Schema | None = None  # the source's, from its first batch (renamed and declared types)
        self.first: Batch | None = None  # that batch, renamed
        self.final: Rows | None = None  # after coercion and the transform steps
        self.rows = 0
        self.live: TableSchema | None = None  # the target's, when it exists

    def source(self) -> str:
        self.session.source.test_connection()
        return "opened"

    def source_readable(self) -> str:
        """The first batch of the load's own stream (which the load then reads: nothing is read twice)."""
        first = self.session.first_batch()
        if first is None:
            self.schema, self.rows = pa.schema([]), 0
            return "no rows"
        cls = registry.destination_class(self.config.destination(self.resource.destination).type)
        self.first = ColumnNames(self.resource.name,
                                 case_insensitive=cls.capabilities.case_insensitive_names).apply(first)
        batch = self.first
        if self.resource.declared_schema:
            batch = DeclaredSchema(self.resource.declared_schema).coerce(batch)[0]  # rejects: the load's DLQ
        self.schema, self.rows = batch.schema, batch.num_rows
        return f"{len(self.schema)} column(s), {batch.num_rows} row(s) read"

    def destination(self) -> str:
        destination = self.session.destination
        destination.test_connection()
        self.live = destination.table_schema(self.target)
        return "writable; " + ("target exists" if self.live is not None else "target will be created")

    def transforms(self) -> str:
        """The first batch through coercion and the transform steps, dry: unknown columns and bad expressions
        are found here, and the columns the checks and keys refer to are those after the steps."""
        assert self.first is not None
        stages = self.pipeline.stages[:-1]  # all but schema evolution, which the drift check runs
        rows = Rows.read(self.first)
        for stage in stages:
            rows = stage.apply(rows).rows
        self.final = rows
        return f"{len(rows.data.schema)} column(s) after {len(self.resource.transforms)} step(s)"

    def columns(self) -> str:
        assert self.schema is not None
        resource, read = self.resource, self.schema.names
        written = self.final.data.schema.names if self.final is not None else read
        wanted = {"primary_key": (list(resource.primary_key) if resource.mode is WriteMode.MERGE else [], written),
                  "incremental column": ([resource.incremental.column] if resource.incremental else [], read),
                  "checkpoint_column": ([resource.checkpoint_column] if resource.checkpoint_column else [], read),
                  "quality check column": ([c.column for c in resource.quality_checks if c.column], written)}
        missing = {what: [c for c in cols if c not in names] for what, (cols, names) in wanted.items()}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            detail = "; ".join(f"{what} {cols} not in the columns" for what, cols in missing.items())
            msg = f"{detail}; columns read: {read}" + (f", after the transforms: {written}" if written != read else "")
            raise ConduitError(msg, hint="fix the resource's column names")
        cls = registry.destination_class(self.config.destination(resource.destination).type)
        problems = name_problems(written, self.target.table, cls.capabilities, kind_of(cls))
        if problems:
            raise ConduitError("; ".join(problems), hint=NAMES_HINT)
        return "present"

    def drift(self) -> str:
        """The rows as they will be written, through the schema evolution stage, dry (the target is not
        altered): the mode decides on the drift."""
        rows = self.final if self.final is not None else Rows.read(self.first) if self.first is not None else None
        if rows is None:
            return "no rows to compare"
        evolve = self.pipeline.stages[-1]
        assert isinstance(evolve, EvolveStage)
        if self.final is None:  # no transform steps: coercion first, as the load does
            for stage in self.pipeline.stages[:-1]:
                rows = stage.apply(rows).rows
        evolve.apply(rows)
        if not evolve.summary:
            return "no drift"
        return f"drift allowed by mode {self.resource.schema_evolution.mode}: {evolve.summary}"

    @cached_property
    def pipeline(self) -> Pipeline:
        """The load's stages, dry, with the target's schema as the destination check found it."""
        return build_pipeline(self.resource, self.session.destination, self.target, dry=True, live=lambda: self.live,
                              context=self.session.step_context())

    def close(self) -> None:
        if "pipeline" in self.__dict__:
            close_pipeline(self.pipeline)


def _resource(config: IngestConfig, session: LoadSession, report: PreflightReport) -> None:
    checks, name = _ResourceChecks(config, session), session.resource.name
    if session.state_error is not None:
        # Where the load would resume is unknown: its source is not read (a batch read now could be lost).
        report.checks.append(Check(name, "saved state", False, redact(f"cannot read it: {session.state_error}")))
        _check(report, name, "destination", checks.destination)
        return
    try:
        if _check(report, name, "source", checks.source):
            _check(report, name, "source readable", checks.source_readable)
        destination_ok = _check(report, name, "destination", checks.destination)
        if checks.schema is None:
            return
        if session.resource.transforms and checks.first is not None and destination_ok \
                and not _check(report, name, "transforms", checks.transforms):
            return
        _check(report, name, "columns", checks.columns)
        if destination_ok:
            _check(report, name, "schema drift", checks.drift)
    finally:
        checks.close()


def preflight(config: IngestConfig, sessions: Sequence[LoadSession]) -> PreflightReport:
    """Check every resource's session; never raises for a problem (the report lists them). Raises
    :class:`StateError` when a source finds that saved state does not fit it (a file changed since its
    checkpoint), and :class:`Cancelled` on a signal."""
    report = PreflightReport()
    started = time.perf_counter()
    for session in sessions:
        _resource(config, session, report)
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def probe(config: IngestConfig, resources: Sequence[ResourceConfig]) -> PreflightReport:
    """Preflight without a run (``conduit validate``): fresh sessions that read from the start."""
    sessions = [LoadSession(plan_resource(config, resource, "validate")) for resource in resources]
    try:
        return preflight(config, sessions)
    finally:
        for session in sessions:
            session.close()
