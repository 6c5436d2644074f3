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
from typing import Any

import pyarrow as pa

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.connectors import registry
from conduit_core.connectors.base import WriteMode
from conduit_core.engine.names import NAMES_HINT, kind_of, name_problems
from conduit_core.errors import EXIT_PREFLIGHT, ConduitError
from conduit_core.observe.redact import redact
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.evolution import plan
from conduit_core.schema.model import TableSchema


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
    started = time.perf_counter()
    try:
        detail, ok = step(), True
    except ConduitError as exc:
        detail, ok = exc.message + (f" (hint: {exc.hint})" if exc.hint else ""), False
    except Exception as exc:  # noqa: BLE001 - a broken plugin is a preflight problem, not a crash
        detail, ok = f"unexpected {type(exc).__name__}: {exc}", False
    report.checks.append(Check(resource, name, ok, redact(detail), round(time.perf_counter() - started, 3)))
    return ok


class _ResourceChecks:
    """The checks of one resource; each returns its detail or raises. What one finds, the next uses."""

    def __init__(self, config: IngestConfig, resource: ResourceConfig, batch_size: int, full_refresh: bool) -> None:
        from conduit_core.engine.runner import RunOptions, write_target

        self.config, self.resource, self.batch_size = config, resource, batch_size
        self.target = write_target(resource, RunOptions(full_refresh=full_refresh))
        self.schema: pa.Schema | None = None  # the source's, from its first batch
        self.rows = 0
        self.live: TableSchema | None = None  # the target's, when it exists

    def source(self) -> str:
        from conduit_core.engine.runner import build_source

        source = build_source(self.config, self.resource)
        try:
            source.test_connection()
        finally:
            source.close()
        return "opened"

    def source_readable(self) -> str:
        from conduit_core.engine.sample import sample

        self.schema, table = sample(self.config, self.resource, self.batch_size, self.batch_size)
        self.rows = table.num_rows
        return f"{len(self.schema)} column(s), {table.num_rows} row(s) read"

    def destination(self) -> str:
        from conduit_core.engine.runner import build_destination

        destination = build_destination(self.config, self.resource)
        try:
            destination.test_connection()
            self.live = destination.table_schema(self.target)
        finally:
            destination.close()
        return "writable; " + ("target exists" if self.live is not None else "target will be created")

    def columns(self) -> str:
        assert self.schema is not None
        resource, names = self.resource, self.schema.names
        wanted = {"primary_key": list(resource.primary_key) if resource.mode is WriteMode.MERGE else [],
                  "incremental column": [resource.incremental.column] if resource.incremental else [],
                  "checkpoint_column": [resource.checkpoint_column] if resource.checkpoint_column else [],
                  "quality check column": [c.column for c in resource.quality_checks if c.column]}
        missing = {what: [c for c in cols if c not in names] for what, cols in wanted.items()}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            detail = "; ".join(f"{what} {cols} not in the source's columns" for what, cols in missing.items())
            msg = f"{detail}; columns: {names}"
            raise ConduitError(msg, hint="fix the resource's column names")
        cls = registry.destination_class(self.config.destination(resource.destination).type)
        problems = name_problems(names, self.target.table, cls.capabilities, kind_of(cls))
        if problems:
            raise ConduitError("; ".join(problems), hint=NAMES_HINT)
        return "present"

    def drift(self) -> str:
        from conduit_core.engine.schema_stage import implied_declared

        assert self.schema is not None
        keys = self.target.primary_key if self.target.mode is WriteMode.MERGE else ()
        # Text the target types is converted at load time: compare it as the type it will have.
        implied = DeclaredSchema(implied_declared(self.resource, self.live, self.schema))
        arriving = pa.schema([implied.arrow_field(f.name) if f.name in implied.columns else f for f in self.schema])
        decided = plan(self.live, arriving, self.resource.schema_evolution, keys=keys, resource=self.resource.name,
                       types_known=self.rows > 0)
        if not decided.drift:
            return "no drift"
        return f"drift allowed by mode {self.resource.schema_evolution.mode}: {decided.drift.summary()}"


def _resource(config: IngestConfig, resource: ResourceConfig, report: PreflightReport, batch_size: int,
              full_refresh: bool) -> None:
    checks, name = _ResourceChecks(config, resource, batch_size, full_refresh), resource.name
    if _check(report, name, "source", checks.source):
        _check(report, name, "source readable", checks.source_readable)
    destination_ok = _check(report, name, "destination", checks.destination)
    if checks.schema is None:
        return
    _check(report, name, "columns", checks.columns)
    if destination_ok:
        _check(report, name, "schema drift", checks.drift)


def preflight(config: IngestConfig, resources: Sequence[ResourceConfig], *, batch_size: int | None = None,
              full_refresh: bool = False) -> PreflightReport:
    """Check every resource; never raises for a problem (the report lists them)."""
    report = PreflightReport()
    started = time.perf_counter()
    for resource in resources:
        size = batch_size or resource.batch_size or config.settings.batch_size
        _resource(config, resource, report, size, full_refresh)
    report.duration_s = round(time.perf_counter() - started, 3)
    return report
