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
from conduit_core.connectors.base import WriteMode
from conduit_core.errors import EXIT_PREFLIGHT, ConduitError
from conduit_core.observe.redact import redact
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.schema.evolution import plan


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


def _resource(config: IngestConfig, resource: ResourceConfig, report: PreflightReport, batch_size: int,
              full_refresh: bool) -> None:
    from conduit_core.engine.runner import RunOptions, build_destination, build_source, write_target
    from conduit_core.engine.sample import sample
    from conduit_core.engine.schema_stage import implied_declared

    name = resource.name
    target = write_target(resource, RunOptions(full_refresh=full_refresh))

    def source_opens() -> str:
        source = build_source(config, resource)
        try:
            source.test_connection()
        finally:
            source.close()
        return "opened"

    schema: list[pa.Schema] = []
    sampled: list[int] = []

    def source_reads() -> str:
        found, table = sample(config, resource, batch_size, batch_size)
        schema.append(found)
        sampled.append(table.num_rows)
        return f"{len(found)} column(s), {table.num_rows} row(s) read"

    live: list[Any] = []

    def destination_ready() -> str:
        destination = build_destination(config, resource)
        try:
            destination.test_connection()
            live.append(destination.table_schema(target))
        finally:
            destination.close()
        return "writable; " + ("target exists" if live[0] is not None else "target will be created")

    if _check(report, name, "source", source_opens):
        _check(report, name, "source readable", source_reads)
    destination_ok = _check(report, name, "destination", destination_ready)
    if not schema:
        return

    def columns_exist() -> str:
        names = schema[0].names
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
        return "present"

    _check(report, name, "columns", columns_exist)
    if destination_ok:

        def drift() -> str:
            keys = target.primary_key if target.mode is WriteMode.MERGE else ()
            implied = DeclaredSchema(implied_declared(resource, live[0], schema[0]))
            arriving = pa.schema([implied.arrow_field(f.name) if f.name in implied.columns else f
                                  for f in schema[0]])
            decided = plan(live[0], arriving, resource.schema_evolution, keys=keys, resource=name,
                           types_known=bool(sampled and sampled[0]))
            if not decided.drift:
                return "no drift"
            mode = resource.schema_evolution.mode
            return f"drift allowed by mode {mode}: {decided.drift.summary()}"

        _check(report, name, "schema drift", drift)


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
