"""Rich tables for CLI output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from conduit_core.connectors.registry import ConnectorInfo
from conduit_core.engine.results import RunResult

if TYPE_CHECKING:
    from conduit_core.engine.preflight import PreflightReport
    from conduit_core.stages.transforms import StepInfo

_STATUS_STYLE = {"success": "green", "partial_success": "yellow", "failed": "red", "skipped": "dim"}


def _status(value: str) -> str:
    return f"[{_STATUS_STYLE.get(value, 'white')}]{value}[/]"


def connectors_table(infos: Sequence[ConnectorInfo]) -> Table:
    table = Table(title="Connectors")
    for name in ("kind", "type", "origin", "description"):
        table.add_column(name)
    for info in infos:
        description = f"[red]unavailable: {info.error}[/]" if info.error else info.description
        table.add_row(info.kind, info.type, info.origin, description)
    return table


def steps_table(infos: Sequence[StepInfo]) -> Table:
    table = Table(title="Transform steps")
    for name in ("step", "origin", "target", "description"):
        table.add_column(name)
    for info in infos:
        description = f"[red]unavailable: {escape(info.error)}[/]" if info.error else escape(info.description)
        table.add_row(info.name, info.origin, escape(info.target), description)
    return table


def result_table(result: RunResult) -> Table:
    table = Table(title=f"Run {result.run_id}: {_status(str(result.status))}")
    for name in ("resource", "status", "read", "written", "dlq", "filtered", "batches", "seconds", "error"):
        table.add_column(name, justify="right" if name in {"read", "written", "dlq", "filtered", "batches",
                                                            "seconds"} else "left", overflow="fold")
    for r in result.resources:
        table.add_row(r.resource, _status(str(r.status)), f"{r.rows_read:,}", f"{r.rows_written:,}",
                      f"{r.rows_dlq:,}", f"{r.rows_filtered:,}", str(r.batches), f"{r.duration_s:.2f}",
                      escape(r.error or ""))
    return table


def runs_table(runs: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Run history")
    for name in ("run_id", "started", "status", "resources", "read", "written", "seconds", "errors"):
        table.add_column(name, overflow="fold")
    for run in runs:
        resources = ", ".join(f"{r['resource']}({r['status']})" for r in run["resources"])
        errors = "; ".join(f"{r['resource']}: {r['error']}" for r in run["resources"] if r.get("error"))
        table.add_row(run["run_id"][:12], run["started_at"][:19], _status(run["status"]), resources,
                      f"{run['rows_read'] or 0:,}", f"{run['rows_written'] or 0:,}", f"{run['duration_s'] or 0:.2f}",
                      errors)
    return table


def preflight_table(report: PreflightReport) -> Table:
    table = Table(title=f"Preflight ({report.duration_s:.2f} s): "
                        + ("[green]ok[/]" if not report.problems else f"[red]{len(report.problems)} problem(s)[/]"))
    for name in ("resource", "check", "result", "detail"):
        table.add_column(name, overflow="fold")
    for c in report.checks:
        table.add_row(escape(c.resource), c.check, "[green]ok[/]" if c.ok else "[red]FAILED[/]", escape(c.detail))
    return table
