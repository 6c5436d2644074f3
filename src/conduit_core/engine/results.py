"""What a run produced: per-resource counters and the run's overall status."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    SUCCESS = "success"
    PARTIAL_SUCCESS = "partial_success"
    FAILED = "failed"
    #: Not loaded by this run: a dry run, or a resource an interrupted run had completed (``--resume``).
    SKIPPED = "skipped"
    #: Stopped by a signal (or killed: a later run finds the run still marked running and says so).
    INTERRUPTED = "interrupted"
    #: The run has started and not finished (as a killed run is seen until the next run settles it).
    RUNNING = "running"

    @property
    def completed(self) -> bool:
        """The load finished (its data is in the destination, rejected rows in the DLQ)."""
        return self in (Status.SUCCESS, Status.PARTIAL_SUCCESS)


@dataclass
class ResourceResult:
    resource: str
    source: str
    destination: str
    mode: str
    status: Status = Status.SUCCESS
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    rows_read: int = 0
    rows_written: int = 0
    rows_dlq: int = 0
    rows_filtered: int = 0
    batches: int = 0
    retries: int = 0
    checkpoints: int = 0
    #: For a resource skipped by ``--resume``: the run in which its load had completed.
    completed_in: str | None = None
    #: The run whose checkpoint this run continued, and the rows that run had already committed.
    resumed_from: str | None = None
    rows_before_resume: int = 0
    #: Rows (written, read, filtered, dlq) that the resumed run had committed: the base this run counts from.
    base_counts: tuple[int, int, int, int] = field(default=(0, 0, 0, 0), repr=False)
    files_read: list[str] = field(default_factory=list)
    #: Drift found against the target at the start of the load (``{"drift", "breaking", "changes"}``).
    schema_drift: dict[str, Any] | None = None
    #: Changes ``schema_evolution: auto`` applied, with the statements it ran.
    schema_changes: list[dict[str, Any]] = field(default_factory=list)
    #: Columns renamed so every name is unique for the destination (``{position, original, name, why}``).
    renamed_columns: list[dict[str, Any]] = field(default_factory=list)
    #: The version of the resource's schema in the schema store after this load.
    schema_version: int | None = None
    #: Each stage of the load (coerce, incremental, transform steps, quality, evolve): rows in and out,
    #: filtered, sent to the DLQ, unmatched, and its time.
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: Per quality check (and ``coercion``): check, column, action and rows that failed it.
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The dead-letter file of this run, when rows went to it.
    dlq_file: str | None = None
    error: str | None = None
    error_type: str | None = None
    #: The exception behind an unexpected failure, for ``--debug``; never stored.
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_written + self.rows_dlq + self.rows_filtered

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in {"exception", "base_counts"}}
        data["status"] = str(self.status)
        data["files_read"] = list(self.files_read)
        return data


@dataclass
class RunResult:
    run_id: str
    config_file: str
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    dry_run: bool = False
    resources: list[ResourceResult] = field(default_factory=list)
    #: The preflight report (``{"ok", "duration_s", "checks"}``), when preflight ran.
    preflight: dict[str, Any] | None = None
    #: The resources the run set out to load, in order (those it did not reach have no result).
    planned: list[str] = field(default_factory=list)
    #: ``--resume``: the interrupted run this run continues; on that run, the run that continued it.
    resumes: str | None = None
    resumed_by: str | None = None
    #: What stopped the run before its end: a signal's name, or ``killed`` (found later still running).
    interrupted: str | None = None

    @property
    def status(self) -> Status:
        if self.interrupted:
            return Status.INTERRUPTED
        if not self.finished_at:
            return Status.RUNNING
        if self.preflight is not None and not self.preflight["ok"]:
            return Status.FAILED
        statuses = {r.status for r in self.resources}
        if Status.FAILED in statuses:
            return Status.FAILED
        if Status.PARTIAL_SUCCESS in statuses:
            return Status.PARTIAL_SUCCESS
        return Status.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": str(self.status),
            "config_file": self.config_file,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "dry_run": self.dry_run,
            "rows_read": sum(r.rows_read for r in self.resources),
            "rows_written": sum(r.rows_written for r in self.resources),
            "rows_dlq": sum(r.rows_dlq for r in self.resources),
            "rows_filtered": sum(r.rows_filtered for r in self.resources),
            "preflight": self.preflight,
            "planned": list(self.planned),
            "resumes": self.resumes,
            "resumed_by": self.resumed_by,
            "interrupted": self.interrupted,
            "resources": [r.to_dict() for r in self.resources],
        }
